"""What a model is made of: parameters per layer, receptive field, compute, memory and CPU latency per image."""

from __future__ import annotations

import copy
import math
import statistics
import time

import pandas as pd
import torch
from torch import nn
from torchsummary import summary

RF_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def layer_table(model: nn.Module) -> pd.DataFrame:
    """One row per module that owns parameters (name, type, parameter shapes, count), then a total row."""
    rows = []
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if own:
            rows.append({
                "layer": name,
                "type": type(module).__name__,
                "shapes": ", ".join(str(tuple(p.shape)) for p in own),
                "parameters": sum(p.numel() for p in own),
            })
    rows.append({"layer": "total", "type": "", "shapes": "", "parameters": sum(p.numel() for p in model.parameters())})
    return pd.DataFrame(rows)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def show_summary(model: nn.Module, input_size: tuple[int, ...] = (1, 28, 28)) -> None:
    """Print torchsummary's table without touching `model`.

    torchsummary runs a forward pass in whatever mode the model is in, and a train-mode pass would update
    BatchNorm running statistics; so it gets an eval-mode copy, on CPU unless the model lives on CUDA.
    """
    device = "cuda" if _device_of(model).type == "cuda" else "cpu"
    summary(copy.deepcopy(model).to(device).eval(), input_size, device=device)


def _first(value) -> int:
    """Square kernels/strides/paddings: the first entry of a pair, or the int itself."""
    return value[0] if isinstance(value, tuple) else value


def receptive_field(model: nn.Module, input_size: int = 28) -> pd.DataFrame:
    """Receptive field after every conv/pool layer, walking `model.modules()` in registration order.

    This is the order of the forward pass for the sequential models here. An AdaptiveAvgPool2d to 1x1 is
    treated as one kernel covering the whole remaining map.
    """
    rows = []
    size, jump, field = input_size, 1, 1
    for name, module in model.named_modules():
        if not isinstance(module, RF_LAYERS):
            continue
        if isinstance(module, nn.AdaptiveAvgPool2d):
            if _first(module.output_size) != 1:
                raise ValueError(f"{name}: only AdaptiveAvgPool2d to 1x1 is supported, got {module.output_size}")
            kernel, stride, padding, dilation = size, size, 0, 1
        else:
            kernel, stride = _first(module.kernel_size), _first(module.stride)
            dilation = _first(getattr(module, "dilation", 1))
            padding = module.padding
            if padding == "valid":
                padding = 0
            elif padding == "same":
                padding = dilation * (kernel - 1) // 2
            padding = _first(padding)
        span = size + 2 * padding - dilation * (kernel - 1) - 1
        ceil_mode = getattr(module, "ceil_mode", False)
        size = (-(-span // stride) if ceil_mode else span // stride) + 1
        field += (kernel - 1) * dilation * jump
        jump *= stride
        rows.append({
            "layer": name,
            "type": type(module).__name__,
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "output_size": size,
            "jump": jump,
            "receptive_field": field,
        })
    return pd.DataFrame(rows)


def final_receptive_field(model: nn.Module, input_size: int = 28) -> int:
    """Receptive field of the last Conv2d (after a global average pool that is the whole input)."""
    table = receptive_field(model, input_size)
    return int(table[table["type"] == "Conv2d"]["receptive_field"].iloc[-1])


def _leaf_outputs(model: nn.Module, input_size: tuple[int, ...]) -> list[tuple[nn.Module, torch.Tensor]]:
    """(module, output) of every leaf module for one eval-mode forward pass of a single image."""
    model = copy.deepcopy(model).eval()
    outputs: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [
        module.register_forward_hook(lambda module, _inputs, output: outputs.append((module, output)))
        for module in model.modules()
        if not list(module.children())
    ]
    with torch.no_grad():
        model(torch.zeros(1, *input_size, device=_device_of(model)))
    for hook in hooks:
        hook.remove()
    return outputs


def macs(model: nn.Module, input_size: tuple[int, ...] = (1, 28, 28)) -> int:
    """Multiply-accumulates of the Conv2d and Linear layers for one image."""
    total = 0
    for module, output in _leaf_outputs(model, input_size):
        if isinstance(module, nn.Conv2d):
            kernel_h, kernel_w = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kernel_h * kernel_w
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
    return total


def memory(model: nn.Module, batch_size: int = 128, input_size: tuple[int, ...] = (1, 28, 28)) -> dict:
    """Bytes of parameters, buffers, the input batch and every leaf module's output for a forward pass (an
    in-place ReLU's output counted too, although it reuses its input's memory: an upper bound)."""
    outputs = _leaf_outputs(model, input_size)
    return {
        "batch_size": batch_size,
        "parameter_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "buffer_bytes": sum(b.numel() * b.element_size() for b in model.buffers()),
        "input_bytes": batch_size * math.prod(input_size) * 4,  # float32 images
        "activation_bytes": batch_size * sum(output.numel() * output.element_size() for _, output in outputs),
    }


def latency_ms(model: nn.Module, batch_size: int = 1, calls: int = 200, warmup: int = 20) -> float:
    """Median milliseconds of one eval-mode forward pass of `batch_size` images on one CPU thread, eager mode
    (meaningful only on an otherwise idle machine)."""
    model = copy.deepcopy(model).cpu().eval()
    images = torch.zeros(batch_size, 1, 28, 28)
    times = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for call in range(warmup + calls):
                started = time.perf_counter()
                model(images)
                if call >= warmup:
                    times.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times) * 1000
