"""Reading what a shared object is built for."""

from __future__ import annotations

from layerkit.layer.elf import glibc_needs, machine
from tests.wheels import ELF_AARCH64, elf_needing


def test_the_glibc_needed_is_read_from_the_version_needs_section_only() -> None:
    so = elf_needing(0x3E, ["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.14"])
    assert glibc_needs(so) == 17
    # Text that merely mentions a newer glibc (a message, a string constant) is not a need.
    quoted = elf_needing(0x3E, ["GLIBC_2.17"], rodata=b"requires GLIBC_2.99 or newer\0")
    assert glibc_needs(quoted) == 17
    assert machine(quoted) == "x86_64"


def test_an_object_without_needs_a_truncated_one_and_not_elf_have_none() -> None:
    assert glibc_needs(ELF_AARCH64) is None
    assert machine(ELF_AARCH64) == "aarch64"
    assert glibc_needs(elf_needing(0xB7, ["GLIBC_2.17"])[:80]) is None
    assert glibc_needs(b"#!/bin/sh\n") is None and machine(b"#!/bin/sh\n") is None
