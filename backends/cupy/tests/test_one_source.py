"""Mask stream v1 has one C source, the core's header: the CUDA files add no second copy of it."""

from __future__ import annotations

from pathlib import Path

from unidrop_cupy import source

import unidrop

#: Text that only the Philox rounds and the float16 / bfloat16 rounding rules contain.
ONE_COPY_MARKERS = ("0xD2511F53", "0xCD9E8D57", "0x9E3779B9", "0x477FF000", "0x7FFFu +")


def test_the_cuda_files_include_the_core_header_and_copy_none_of_it() -> None:
    header = Path(unidrop.get_include()) / "unidrop" / "mask_stream_v1.h"
    assert header.is_file()
    cuda_text = source.read(source.CORE_HEADER) + source.read(source.KERNELS_SOURCE)
    assert '#include "unidrop/mask_stream_v1.h"' in cuda_text
    for marker in ONE_COPY_MARKERS:
        assert marker in header.read_text(), marker
        assert marker not in cuda_text, f"{marker} is copied into the CUDA sources"


def test_nvrtc_gets_the_core_header_once_in_front_of_the_kernels() -> None:
    text = source.kernel_source()
    header = (Path(unidrop.get_include()) / "unidrop" / "mask_stream_v1.h").read_text()
    assert text.startswith(header)
    for marker in ONE_COPY_MARKERS:
        assert text.count(marker) == header.count(marker), marker
