import warnings

import pytest
import torch

from mnist_lib import models
from mnist_lib.anatomy import final_receptive_field
from mnist_lib.errors import ConfigError
from mnist_lib.models import FRONTIER_WIDTHS, MODELS, SUPERLIGHT_WIDTHS, count_parameters, create_model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shapes_and_budget(name):
    model = create_model(name).eval()
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert count_parameters(model) < 8000


def test_iterations_shrink_and_superlight_within_5k():
    light, lightest, superlight = (count_parameters(create_model(n)) for n in ("light", "lightest", "superlight"))
    assert lightest < light
    assert superlight <= 5000


@pytest.mark.parametrize("name", sorted(MODELS))
def test_last_conv_before_the_classifier_sees_the_whole_image(name):
    model = create_model(name)
    # With a global-average-pooling head, the last conv that sees a spatial map is the last one in `features`.
    pooled = any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in model.head.modules())
    assert final_receptive_field(model.features if pooled else model) >= 28


def test_registry_rejects_unknown_name():
    with pytest.raises(ConfigError, match="model must be one of light, lightest, superlight, gapnet, gap-1.4k"):
        create_model("resnet")
    with pytest.raises(ConfigError, match="lightest takes dropout"):
        create_model("lightest", width=4)


def test_model_kwargs_reach_the_model():
    dropouts = {m.p for m in create_model("lightest", dropout=0.2).modules() if isinstance(m, torch.nn.Dropout)}
    assert dropouts == {0.2}


def test_lightest_and_superlight_use_batchnorm_light_does_not():
    def has_bn(name):
        return any(isinstance(m, torch.nn.BatchNorm2d) for m in create_model(name).modules())

    assert not has_bn("light") and has_bn("lightest") and has_bn("superlight")
    assert any(isinstance(m, torch.nn.AdaptiveAvgPool2d) for m in create_model("superlight").modules())


def test_superlight_is_gapnet_at_its_widths_with_the_same_weights_and_keys():
    torch.manual_seed(1)
    superlight = create_model("superlight").state_dict()
    torch.manual_seed(1)
    gapnet = create_model("gapnet", widths=SUPERLIGHT_WIDTHS).state_dict()
    assert list(superlight) == list(gapnet) and all(torch.equal(superlight[k], gapnet[k]) for k in superlight)


@pytest.mark.parametrize("name", list(FRONTIER_WIDTHS))
def test_each_frontier_model_is_named_by_its_parameter_count(name):
    parameters = count_parameters(create_model(name))
    assert name == f"gap-{parameters / 1000:.1f}k"


def test_the_frontier_family_spans_1500_to_8000_parameters_with_room_under_4000():
    sizes = sorted(count_parameters(create_model(name)) for name in FRONTIER_WIDTHS)
    assert len(sizes) + 1 >= 6  # with SuperLight, its member at scale 1
    assert sizes[0] < 1500 and 7000 < sizes[-1] < 8000
    assert sum(3000 <= size <= 4000 for size in sizes) >= 2


@pytest.mark.parametrize("widths", [(8, 8), (8, 8, 10, 10, 12, 10, 0), (8.5, 8, 10, 10, 12, 10, 20)])
def test_gapnet_rejects_widths_that_are_not_seven_positive_integers(widths):
    with pytest.raises(ConfigError, match="widths must be 7 positive integers"):
        create_model("gapnet", widths=widths)


def test_the_ablation_arguments_change_only_what_they_name():
    def kinds(model):
        return [type(m).__name__ for m in model.features.modules() if not isinstance(m, torch.nn.Sequential)]

    light, light_bn = create_model("light"), create_model("light", norm=True, dropout=0.05)
    assert "BatchNorm2d" not in kinds(light) and kinds(light_bn).count("BatchNorm2d") == 5
    assert kinds(light_bn).count("Dropout") == 4
    gap_head = create_model("lightest", gap_head=True)
    assert kinds(gap_head) == kinds(create_model("lightest"))
    assert isinstance(gap_head.head[0], torch.nn.AdaptiveAvgPool2d)
    plain = create_model("gapnet", dilations=(1, 1, 1, 1), second_pool=True)
    assert [m.dilation for m in plain.features.modules() if isinstance(m, torch.nn.Conv2d)] == [(1, 1)] * 7
    assert kinds(plain).count("MaxPool2d") == 2 and plain(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError, match="dilations must be 4 positive integers"):
        create_model("gapnet", dilations=(1, 2))


def test_grouped_and_separable_gapnets_cut_the_14x14_convs_parameters():
    widths = (8, 8, 12, 12, 14, 12, 22)
    full, grouped = create_model("gapnet", widths=widths), create_model("gapnet", widths=widths, groups=2)
    separable = create_model("gapnet", widths=widths, separable=True)
    assert count_parameters(full) - count_parameters(grouped) == (8 * 12 + 12 * 12 + 12 * 14 + 14 * 12) * 9 // 2
    depthwise = [m for m in separable.features.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert [m.groups for m in depthwise] == [8, 12, 12, 14]
    assert separable(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert sum(isinstance(m, torch.nn.ChannelShuffle) for m in grouped.modules()) == 4  # the groups mix
    with pytest.raises(ConfigError, match="groups must be a positive integer dividing"):
        create_model("gapnet", widths=(8, 9, 12, 12, 14, 12, 22), groups=2)
    with pytest.raises(ConfigError, match="groups and separable exclude each other"):
        create_model("gapnet", widths=widths, groups=2, separable=True)


def test_a_bottleneck_gapnet_puts_a_1x1_conv_before_each_14x14_conv():
    """The superlight-bottleneck study's layout: 4,955 parameters, a 1x1 conv to 7 channels before each 14x14 conv."""
    model = create_model("gapnet", widths=(8, 8, 13, 13, 13, 13, 20), bottleneck=7)
    assert count_parameters(model) == 4955
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs if m.kernel_size == (1, 1)][:4] == [(8, 7)] + [(13, 7)] * 3
    assert [(m.in_channels, m.out_channels) for m in convs if m.kernel_size == (3, 3)][2:] == [(7, 13)] * 4
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(create_model("gapnet", bottleneck=0)) == count_parameters(create_model("superlight"))
    for bad in (-1, 1.5, "7", True):
        with pytest.raises(ConfigError, match="bottleneck must be 0"):
            create_model("gapnet", bottleneck=bad)
    with pytest.raises(ConfigError, match="groups must be a positive integer dividing"):
        create_model("gapnet", widths=(8, 8, 14, 14, 16, 14, 24), groups=2, bottleneck=7)


CONV_SHAPES = {  # nn.Conv2d arguments, input channels first: every kind of conv the models hold, and more
    "3x3 same, bias": dict(in_channels=8, out_channels=8, kernel_size=3, padding=1),
    "dilated 3, no bias": dict(in_channels=10, out_channels=12, kernel_size=3, padding=3, dilation=3, bias=False),
    "3x3 valid (7 -> 5)": dict(in_channels=12, out_channels=12, kernel_size=3),
    "7x7 classifier": dict(in_channels=10, out_channels=10, kernel_size=7),
    "1x1": dict(in_channels=10, out_channels=20, kernel_size=1, bias=False),
    "rectangular": dict(in_channels=3, out_channels=5, kernel_size=(3, 5), padding=(1, 0), dilation=(2, 1)),
}


@pytest.fixture
def flipped_input_grads():
    with models.conv_input_grads("forward-conv"):
        yield


@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_the_models_conv_gives_nn_conv2ds_outputs_and_gradients(shape, flipped_input_grads):
    """Inside conv_input_grads("forward-conv"), models.Conv2d computes its input gradient as a forward conv: the
    same sums as nn.Conv2d's backward in another order, so equal to float rounding; weight and bias gradients are
    nn.Conv2d's."""
    args = CONV_SHAPES[shape]
    torch.manual_seed(0)
    reference, ours = torch.nn.Conv2d(**args), models.Conv2d(**args)
    ours.load_state_dict(reference.state_dict())
    inputs = torch.randn(4, args["in_channels"], 9, 11, requires_grad=True)
    outputs = reference(inputs)
    grad_out = torch.randn_like(outputs)
    expected = torch.autograd.grad(outputs, [inputs, *reference.parameters()], grad_out)
    ours_outputs = ours(inputs)
    assert ours_outputs.grad_fn.name() == "_InputGradByConvBackward"  # the fast path was taken
    got = torch.autograd.grad(ours_outputs, [inputs, *ours.parameters()], grad_out)
    torch.testing.assert_close(ours_outputs, outputs, rtol=0, atol=0)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)  # the input gradient: rounding apart
    for mine, theirs in zip(got[1:], expected[1:], strict=True):  # weight (and bias) gradients: oneDNN's own
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)


def test_the_flipped_input_gradient_is_scoped_to_its_context():
    """Outside conv_input_grads("forward-conv") (and after it, even when it raised or nested another method),
    Conv2d is nn.Conv2d's own; a misspelt method is refused, not taken as native."""
    def grad_fn() -> str:
        return models.Conv2d(2, 2, 3)(torch.randn(1, 2, 5, 5, requires_grad=True)).grad_fn.name()

    assert grad_fn() == "ConvolutionBackward0"
    with pytest.raises(RuntimeError), models.conv_input_grads("forward-conv"):
        assert grad_fn() == "_InputGradByConvBackward"
        with models.conv_input_grads("native"):
            assert grad_fn() == "ConvolutionBackward0"
        assert grad_fn() == "_InputGradByConvBackward"  # the outer method, restored
        raise RuntimeError
    assert grad_fn() == "ConvolutionBackward0"
    with pytest.raises(ValueError, match="not one of native, forward-conv"), models.conv_input_grads("forward conv"):
        pass


def test_the_flipped_input_gradient_has_second_derivatives(flipped_input_grads):
    conv = models.Conv2d(2, 3, 3, padding=2, dilation=2).double()
    inputs = torch.randn(2, 2, 6, 7, dtype=torch.double, requires_grad=True)
    assert conv(inputs).grad_fn.name() == "_InputGradByConvBackward"
    def flipped(x, weight):
        return models._InputGradByConv.apply(x, weight, conv.bias, conv.padding, conv.dilation)

    assert torch.autograd.gradgradcheck(flipped, (inputs, conv.weight))  # with respect to inputs and weights


def test_the_models_conv_leaves_what_it_cannot_take_to_nn_conv2d(flipped_input_grads):
    strided = models.Conv2d(2, 2, 3, stride=2)
    grouped = models.Conv2d(4, 4, 3, groups=2)
    inputs = torch.randn(1, 4, 8, 8, requires_grad=True)
    assert strided(inputs[:, :2]).grad_fn.name() == "ConvolutionBackward0"
    assert grouped(inputs).grad_fn.name() == "ConvolutionBackward0"
    assert models.Conv2d(4, 4, 3).eval()(inputs).grad_fn.name() == "ConvolutionBackward0"  # eval mode
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert models.Conv2d(4, 4, 3)(inputs).grad_fn.name() == "ConvolutionBackward0"


def test_pooling_gives_nn_maxpools_maxima_and_gradients_bit_for_bit():
    inputs = torch.relu(torch.randn(3, 8, 28, 28)).round().requires_grad_()  # many ties
    upstream = torch.randn(3, 8, 14, 14)
    with torch.no_grad():  # evaluation
        pooled = models.MaxPool2d(2)(inputs)
    assert pooled.is_contiguous()
    assert torch.equal(pooled, torch.nn.functional.max_pool2d(inputs, 2))
    ours = models.MaxPool2d(2)(inputs)  # training: _PoolChannelsLast
    assert ours.grad_fn.name() == "_PoolChannelsLastBackward" and ours.is_contiguous()
    (grad_ours,) = torch.autograd.grad(ours, inputs, upstream)
    native = torch.nn.functional.max_pool2d(inputs, 2)
    (grad_native,) = torch.autograd.grad(native, inputs, upstream)
    assert torch.equal(ours, native) and torch.equal(grad_ours, grad_native) and grad_ours.is_contiguous()
    odd = torch.relu(torch.randn(2, 3, 9, 9)).round().requires_grad_()  # other settings reach the kernel too
    pools = models.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)
    (ours, native), grads = [pool(odd) for pool in pools], []
    for pooled in (ours, native):
        grads.append(torch.autograd.grad(pooled, odd, torch.ones_like(pooled))[0])
    assert torch.equal(ours, native) and torch.equal(*grads)
    channels_last = inputs.detach().contiguous(memory_format=torch.channels_last)
    assert models.MaxPool2d(2)(channels_last).is_contiguous(memory_format=torch.channels_last)  # layout kept


def test_relu_runs_in_place_and_nothing_else_does():
    block = models.conv(8, 8, norm=True)
    assert [type(m).__name__ for m in block] == ["Conv2d", "BatchNorm2d", "ReLU"] and block[2].inplace
    assert not models.conv(8, 8, activation="silu")[1].inplace  # SiLU's backward needs its input


@pytest.mark.parametrize("name", ["light", "lightest", "superlight"])
def test_the_models_trace_for_inference(name):
    """benchmarks/inference.py traces the models: tracing re-runs them with autograd off to check its graph, so the
    evaluation-only pooling path must not change the graph."""
    model = create_model(name).eval()
    example = torch.randn(2, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace is deprecated in torch 2.14
        traced = torch.jit.trace(model, example)
    with torch.no_grad():
        torch.testing.assert_close(traced(example), model(example), rtol=0, atol=0)


def test_gapnet_takes_silu_in_place_of_relu_at_the_same_size():
    silu = create_model("gapnet", activation="silu")
    assert count_parameters(silu) == count_parameters(create_model("superlight"))
    activations = {type(module) for module in silu.modules() if isinstance(module, (torch.nn.ReLU, torch.nn.SiLU))}
    assert activations == {torch.nn.SiLU}
    with pytest.raises(ConfigError, match="activation must be one of relu, silu"):
        create_model("gapnet", activation="tanh")


def test_a_residual_gapnet_adds_its_input_to_each_14x14_conv_that_keeps_the_width():
    """The superlight-residual study's layout: shortcuts around the three 10 -> 10 convs, no parameters added,
    the same weights (and keys, under `body`) as the plain GapNet at those widths."""
    widths = (9, 9, 10, 10, 10, 10, 20)
    torch.manual_seed(0)
    plain = create_model("gapnet", widths=widths)
    torch.manual_seed(0)
    residual = create_model("gapnet", widths=widths, residual=True)
    assert count_parameters(residual) == count_parameters(plain) == 4886
    shortcuts = [m for m in residual.modules() if isinstance(m, models.Residual)]
    assert [(m.body[0][0].in_channels, m.body[0][0].out_channels, m.body[0][0].dilation) for m in shortcuts] == [
        (10, 10, (2, 2)), (10, 10, (2, 2)), (10, 10, (3, 3))]
    assert [p.tolist() for p in residual.parameters()] == [p.tolist() for p in plain.parameters()]
    residual.eval(), plain.eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        stem = residual.features[:4](x)  # up to the first shortcut's input (the 9 -> 10 conv's output)
        assert torch.equal(residual.features[4](stem), stem + plain.features[4](stem))
        assert not torch.equal(residual(x), plain(x))
    assert count_parameters(create_model("gapnet", residual=True)) == count_parameters(create_model("superlight"))
    with pytest.raises(ConfigError, match="residual must be true or false"):
        create_model("gapnet", residual=1)
    with pytest.raises(ConfigError, match="residual needs a 14x14 conv that keeps its width"):
        create_model("gapnet", widths=(8, 8, 9, 10, 11, 12, 20), residual=True)
