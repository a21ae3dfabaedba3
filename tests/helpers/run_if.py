"""`@run_if(...)`: skip a test, naming every need the machine does not meet, and mark what it needs."""

from collections.abc import Callable

import pytest
import torch


def run_if(min_cuda_gpus: int = 0, bf16_cuda: bool = False) -> Callable:
    """E.g. `@run_if(min_cuda_gpus=1)`: skipped with the reason where fewer GPUs are visible, marked `gpu`."""
    missing = []
    if torch.cuda.device_count() < min_cuda_gpus:
        missing.append(f"needs {min_cuda_gpus} CUDA GPU(s), sees {torch.cuda.device_count()}")
    if bf16_cuda and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        missing.append("needs a CUDA GPU with bfloat16")
    marks = [pytest.mark.skipif(bool(missing), reason="; ".join(missing))]
    if min_cuda_gpus or bf16_cuda:
        marks.append(pytest.mark.gpu)

    def decorate(test: Callable) -> Callable:
        for mark in marks:
            test = mark(test)
        return test

    return decorate
