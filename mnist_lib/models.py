"""The models, created by name: the three iterations (`create_model("superlight")`,
`create_model("lightest", dropout=0.1)`), GapNet at any widths (`create_model("gapnet", widths=(...))`) and the
frontier family scaled from SuperLight (`create_model("gap-3.2k")`)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

MODELS: dict[str, Callable[..., nn.Module]] = {}
SUPERLIGHT_WIDTHS = (8, 8, 10, 10, 12, 10, 20)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU}


def register(name: str):
    def add(cls):
        MODELS[name] = cls
        return cls

    return add


def create_model(name: str, **kwargs) -> nn.Module:
    """The registered model `name` built with `kwargs`; ConfigError for an unknown name or unusable arguments."""
    if name not in MODELS:
        raise ConfigError(f"model={name!r} is invalid: model must be one of {', '.join(MODELS)}")
    signature = inspect.signature(MODELS[name])
    try:
        signature.bind(**kwargs)
    except TypeError:
        takes = ", ".join(signature.parameters) or "no arguments"
        raise ConfigError(f"model_args={kwargs!r} is invalid: {name} takes {takes}") from None
    try:
        return MODELS[name](**kwargs)
    except (TypeError, ValueError) as error:  # e.g. nn.Dropout's range check
        raise ConfigError(f"model_args={kwargs!r} is invalid for {name}: {error}") from None


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The model's BatchNorm layers (of any dimension)."""
    return [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _InputGradByConv(torch.autograd.Function):
    """A stride-1, ungrouped, zero-padded convolution whose input gradient is computed as a forward convolution
    with the kernel flipped and its in/out channels swapped (the same sums, in another order). On the CPU,
    oneDNN's backward-data kernel for these narrow layers is several times slower than its own forward kernel,
    most of all for the 8 -> 8 conv at 28x28; benchmarks/train_speed.py (part c) measures the step with and
    without this. Weight and bias gradients are oneDNN's own."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation, ctx.has_bias = padding, dilation, bias is not None
        return F.conv2d(x, weight, bias, padding=padding, dilation=dilation)

    @staticmethod
    def backward(ctx, grad_out):  # stride 1, groups 1, zero padding: what Conv2d._flipped_input_grad_applies checks
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            # out[y] = sum_k w[k] in[y + k*d - p]  =>  grad_in[z] = sum_k w[k] grad_out[z - k*d + p]: a "full"
            # convolution of grad_out with the flipped kernel, padded by d*(k-1) - p.
            full = [d * (k - 1) - p for d, k, p in zip(ctx.dilation, weight.shape[2:], ctx.padding, strict=True)]
            grad_x = F.conv2d(grad_out, weight.flip(2, 3).transpose(0, 1), padding=full, dilation=ctx.dilation)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_out, x, weight, [weight.shape[0]] if ctx.has_bias else None, [1, 1], list(ctx.padding),
                list(ctx.dilation), False, [0, 0], 1, [False, ctx.needs_input_grad[1], ctx.needs_input_grad[2]])
        return grad_x, grad_w, grad_b, None, None


CONV_INPUT_GRADS = ("native", "forward-conv")  # TrainConfig.conv_input_grads
_input_grad_by_conv = False  # on only inside conv_input_grads("forward-conv"): a run's training epochs


@contextlib.contextmanager
def conv_input_grads(method: str) -> Iterator[None]:
    """Within: CPU training computes conv input gradients by `method` ('native': oneDNN's backward-data kernel;
    'forward-conv': `_InputGradByConv`); the previous method is restored on exit."""
    if method not in CONV_INPUT_GRADS:
        raise ValueError(f"conv input gradient method {method!r} is not one of {', '.join(CONV_INPUT_GRADS)}")
    global _input_grad_by_conv
    saved, _input_grad_by_conv = _input_grad_by_conv, method == "forward-conv"
    try:
        yield
    finally:
        _input_grad_by_conv = saved


class Conv2d(nn.Conv2d):
    """nn.Conv2d (same parameters, same state_dict). Inside conv_input_grads("forward-conv"), training on the CPU
    (train mode, autograd on, no autocast) takes `_InputGradByConv` where it applies: stride 1, no groups, numeric
    zero padding no larger than a "full" convolution's. Evaluation, tracing, GPUs and every other conv are
    nn.Conv2d's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (_input_grad_by_conv and self.training and torch.is_grad_enabled() and x.device.type == "cpu"
                and not torch.is_autocast_enabled("cpu") and self._flipped_input_grad_applies):
            return _InputGradByConv.apply(x, self.weight, self.bias, self.padding, self.dilation)
        return super().forward(x)

    @property
    def _flipped_input_grad_applies(self) -> bool:
        return (self.stride == (1, 1) and self.groups == 1 and self.padding_mode == "zeros"
                and not isinstance(self.padding, str)
                and all(d * (k - 1) >= p
                        for d, k, p in zip(self.dilation, self.kernel_size, self.padding, strict=True)))


class _PoolChannelsLast(torch.autograd.Function):
    """2D max-pooling of a standard-layout map whose forward runs on a channels_last copy (ATen's CPU kernel was
    faster in that layout for these narrow maps in development timings; benchmarks/train_speed.py --paired times
    the engine with and without it). Either layout picks the same maxima and the same argmax indices (the first
    maximum in scan order), so the output and the backward pass, ATen's own kernel fed those indices, are bit for
    bit nn.MaxPool2d's."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):
        pooled, indices = torch.ops.aten.max_pool2d_with_indices(
            x.contiguous(memory_format=torch.channels_last), kernel, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(x, indices.contiguous())
        ctx.settings = kernel, stride, padding, dilation, ceil_mode
        return pooled.contiguous()

    @staticmethod
    def backward(ctx, grad_out):
        x, indices = ctx.saved_tensors
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(grad_out.contiguous(), x, *ctx.settings, indices)
        return grad_x, None, None, None, None, None


class MaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d (same maxima, same gradients) that pools a standard-layout CPU map through a channels_last
    copy (`_PoolChannelsLast` where autograd needs it) and returns the standard layout. Anything else is
    nn.MaxPool2d's own, and so is tracing: torch.jit.trace checks its graph with autograd off, which must give the
    graph it traced."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dim() != 4 or not x.is_contiguous() or torch.jit.is_tracing()
                or self.return_indices):
            return super().forward(x)
        if not (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()
        pair = nn.modules.utils._pair
        return _PoolChannelsLast.apply(x, pair(self.kernel_size), pair(self.stride), pair(self.padding),
                                       pair(self.dilation), self.ceil_mode)


def conv(
    c_in: int,
    c_out: int,
    kernel: int = 3,
    padding: int = 1,
    dilation: int = 1,
    norm: bool = False,
    dropout: float = 0.0,
    groups: int = 1,
    separable: bool = False,
    activation: str = "relu",
) -> nn.Sequential:
    """Conv -> ReLU, or Conv -> BatchNorm -> ReLU when `norm` (the conv then has no bias); optional dropout;
    `activation` names another of ACTIVATIONS in place of ReLU.
    `groups` splits the conv into groups and shuffles its output channels across them (so that stacked grouped
    convs mix); `separable` makes it depthwise (one filter per input channel) then 1x1, nothing in between."""
    if separable and groups > 1:
        raise ValueError("groups and separable exclude each other")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if separable:
        layers: list[nn.Module] = [
            Conv2d(c_in, c_in, kernel, padding=padding, dilation=dilation, groups=c_in, bias=False),
            Conv2d(c_in, c_out, 1, bias=not norm)]
    else:
        layers = [Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation, groups=groups, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    # In place: a ReLU's backward needs only its output, and nothing else reads the conv/BatchNorm output it
    # overwrites, so this saves one tensor of every block without changing a value.
    layers.append(nn.ReLU(inplace=True) if activation == "relu" else ACTIVATIONS[activation]())
    if groups > 1:
        layers.append(nn.ChannelShuffle(groups))
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + body(x): an identity shortcut around `body`, which keeps the shape of its input."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvClassifier(nn.Module):
    """`features` (convolutions) then `head` (to 10 logits); subclasses define both."""

    features: nn.Sequential
    head: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten(1)


@register("light")
class LightMNIST(ConvClassifier):
    """Plain baseline: conv/ReLU stacks, two max-pools, a 7x7 conv as the classifier. `norm` and `dropout` add
    Lightest's BatchNorm and dropout to it unchanged otherwise (notebook 02's ablation)."""

    def __init__(self, norm: bool = False, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            conv(1, 8, norm=norm, dropout=dropout), conv(8, 8, norm=norm, dropout=dropout), MaxPool2d(2),  # 28->14
            conv(8, 12, norm=norm, dropout=dropout), conv(12, 12, norm=norm, dropout=dropout), MaxPool2d(2),  # ->7
            conv(12, 10, kernel=1, padding=0, norm=norm),
        )
        self.head = Conv2d(10, 10, kernel_size=7)  # 7x7 -> 1x1 logits


@register("lightest")
class LightestMNIST(ConvClassifier):
    """Light + BatchNorm and dropout, with one more conv and a smaller 5x5 classifier: fewer parameters."""

    def __init__(self, dropout: float = 0.05, gap_head: bool = False):
        super().__init__()
        self.features = nn.Sequential(
            conv(1, 8, norm=True, dropout=dropout), conv(8, 8, norm=True, dropout=dropout), MaxPool2d(2),
            conv(8, 12, norm=True, dropout=dropout), conv(12, 12, norm=True, dropout=dropout), MaxPool2d(2),
            conv(12, 12, padding=0, norm=True, dropout=dropout),  # 7 -> 5
            conv(12, 10, kernel=1, padding=0, norm=True),
        )
        # gap_head (notebook 03's ablation): SuperLight's head, global average pooling and a 1x1 conv, in place of
        # the 5x5 classifier, with nothing else changed.
        self.head = (nn.Sequential(nn.AdaptiveAvgPool2d(1), Conv2d(10, 10, kernel_size=1)) if gap_head
                     else Conv2d(10, 10, kernel_size=5))  # 5x5 -> 1x1 logits


class GapNet(ConvClassifier):
    """SuperLight's layout at any channel widths (7 of them, one per conv, bottleneck 1x1s aside): two 3x3 convs
    at 28x28, a max-pool, four 3x3 convs at 14x14 with dilations 1, 2, 2, 3, a 1x1 conv, global average pooling,
    a 1x1 classifier.

    Dilation (2, 2, 3) grows the receptive field past 28 without a second pool, so the features that are
    averaged keep 14x14 resolution; the last 1x1 conv widens them before pooling. For notebook 03's ablation,
    `dilations` sets those four, `second_pool` puts a max-pool after the second of them (14 -> 7) and `dropout`
    adds dropout after every 3x3 conv. For notebook 04's ideas, `groups` or `separable` make the four 14x14 convs
    grouped or depthwise-separable (fewer parameters per channel, so wider at the same size), and `bottleneck`
    puts a 1x1 conv (Conv -> BatchNorm -> ReLU) to that many channels before each of them (wider outputs, narrower
    3x3 inputs). `residual` adds an identity shortcut around each 14x14 block (conv, BatchNorm, ReLU, with its
    bottleneck) whose output is as wide as its input, x + ReLU(BN(conv(x))): no parameters, a shorter path for the
    gradients through the dilated stack. (One form of shortcut only: the ReLU before the addition, nothing after it.)
    """

    def __init__(self, widths: tuple[int, ...] = SUPERLIGHT_WIDTHS, dilations: tuple[int, ...] = (1, 2, 2, 3),
                 second_pool: bool = False, dropout: float = 0.0, groups: int = 1, separable: bool = False,
                 bottleneck: int = 0, activation: str = "relu", residual: bool = False):
        super().__init__()
        if len(widths) != 7 or not all(isinstance(w, int) and w > 0 for w in widths):
            raise ValueError(f"widths must be 7 positive integers, got {widths!r}")
        if len(dilations) != 4 or not all(isinstance(d, int) and d > 0 for d in dilations):
            raise ValueError(f"dilations must be 4 positive integers, got {dilations!r}")
        if not (isinstance(bottleneck, int) and not isinstance(bottleneck, bool) and bottleneck >= 0):
            raise ValueError(f"bottleneck must be 0 (none) or a positive integer, got {bottleneck!r}")
        if not isinstance(residual, bool):
            raise ValueError(f"residual must be true or false, got {residual!r}")
        if residual and all(widths[i] != widths[i + 1] for i in range(1, 5)):
            raise ValueError(f"residual needs a 14x14 conv that keeps its width (widths[1:6]), got {widths!r}")
        grouped = [*widths[1:6], bottleneck] if bottleneck else widths[1:6]
        if not (isinstance(groups, int) and groups > 0 and all(w % groups == 0 for w in grouped)):
            raise ValueError(f"groups must be a positive integer dividing widths[1:6] (and bottleneck), got {groups!r}")
        w, d = widths, dilations
        block = partial(conv, norm=True, activation=activation)
        layers = [block(1, w[0], dropout=dropout), block(w[0], w[1], dropout=dropout), MaxPool2d(2)]  # 28 -> 14
        for index in range(4):
            c_in = unit_in = w[index + 1]
            unit: list[nn.Module] = []
            if bottleneck:
                unit.append(block(c_in, bottleneck, kernel=1, padding=0))
                c_in = bottleneck
            unit.append(block(c_in, w[index + 2], padding=d[index], dilation=d[index], dropout=dropout,
                              groups=groups, separable=separable))
            if residual and unit_in == w[index + 2]:
                layers.append(Residual(nn.Sequential(*unit)))
            else:
                layers.extend(unit)
            if second_pool and index == 1:
                layers.append(MaxPool2d(2))  # 14 -> 7
        layers.append(block(w[5], w[6], kernel=1, padding=0))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), Conv2d(w[6], 10, kernel_size=1))


@register("superlight")
class SuperLightMNIST(GapNet):
    """Global average pooling instead of a big classifier kernel; one max-pool, then dilated convs at 14x14
    (GapNet at widths 8, 8, 10, 10, 12, 10, 20)."""

    def __init__(self):
        super().__init__(SUPERLIGHT_WIDTHS)


register("gapnet")(GapNet)

# The frontier family (notebook 04): GapNet scaled around SuperLight, named by parameter count.
FRONTIER_WIDTHS = {
    "gap-1.4k": (4, 4, 5, 5, 6, 5, 10),
    "gap-1.9k": (5, 5, 6, 6, 7, 6, 12),
    "gap-2.6k": (6, 6, 7, 7, 8, 7, 14),
    "gap-3.2k": (6, 6, 8, 8, 10, 8, 16),
    "gap-3.9k": (7, 7, 9, 9, 10, 9, 18),
    "gap-6.0k": (9, 9, 11, 11, 13, 11, 22),
    "gap-7.4k": (10, 10, 12, 12, 15, 12, 25),
}
for _name, _widths in FRONTIER_WIDTHS.items():
    register(_name)(partial(GapNet, _widths))
