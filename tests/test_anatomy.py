import pytest
import torch
from torch import nn

from mnist_lib import anatomy
from mnist_lib.models import MODELS, count_parameters, create_model


def conv3(c_in: int = 1, c_out: int = 1, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, **{"padding": 1, **kwargs})


# (layers, input size, expected receptive field / jump / output size after each conv or pool), by hand:
# RF grows by (kernel - 1) * dilation * jump, jump multiplies by the stride.
RF_CASES = {
    "two 3x3 convs": (nn.Sequential(conv3(), conv3()), 28, [3, 5], [1, 1], [28, 28]),
    "conv3 pool2 conv3": (nn.Sequential(conv3(), nn.MaxPool2d(2), conv3()), 28, [3, 4, 8], [1, 2, 2], [28, 14, 14]),
    "unpadded, then dilated": (nn.Sequential(conv3(padding=0), conv3(padding=0, dilation=2)), 28, [3, 7], [1, 1],
                               [26, 22]),
    "strided 5x5 then 3x3": (nn.Sequential(nn.Conv2d(1, 1, 5, stride=2, padding=2), conv3()), 28, [5, 9], [2, 2],
                             [14, 14]),
    "avg pool then global pool": (nn.Sequential(conv3(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Conv2d(1, 1, 1)),
                                  28, [3, 4, 30, 30], [1, 2, 28, 28], [28, 14, 1, 1]),
    "odd size, ceil-mode pool": (nn.Sequential(conv3(), nn.MaxPool2d(2, ceil_mode=True), conv3()), 7, [3, 4, 8],
                                 [1, 2, 2], [7, 4, 4]),
}


@pytest.mark.parametrize("case", RF_CASES)
def test_receptive_field_matches_hand_computed_values(case):
    model, size, fields, jumps, sizes = RF_CASES[case]
    table = anatomy.receptive_field(model, size)
    assert table["receptive_field"].tolist() == fields
    assert table["jump"].tolist() == jumps
    assert table["output_size"].tolist() == sizes
    last_conv = [f for f, t in zip(fields, table["type"], strict=True) if t == "Conv2d"][-1]
    assert anatomy.final_receptive_field(model, size) == last_conv


@pytest.mark.parametrize("name", sorted(MODELS))
def test_receptive_field_output_sizes_match_the_forward_pass(name):
    model = create_model(name).eval()
    layers = [m for m in model.modules() if isinstance(m, anatomy.RF_LAYERS)]
    sizes = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[-1])) for layer in layers]
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    table = anatomy.receptive_field(model)
    assert table["output_size"].tolist() == sizes
    assert anatomy.final_receptive_field(model) >= 28  # every model's logits see the whole digit


def test_receptive_field_rejects_adaptive_pool_to_more_than_one_pixel():
    with pytest.raises(ValueError, match="1x1"):
        anatomy.receptive_field(nn.Sequential(conv3(), nn.AdaptiveAvgPool2d(2)))


def test_layer_table_counts_each_layer_and_the_total():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    table = anatomy.layer_table(model)
    assert table["layer"].tolist() == ["0", "1", "3", "total"]
    assert table["parameters"].tolist() == [36, 8, 27050, 36 + 8 + 27050]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_layer_table_total_matches_count_parameters(name):
    model = create_model(name)
    table = anatomy.layer_table(model)
    assert table["parameters"].iloc[-1] == count_parameters(model) == table["parameters"].iloc[:-1].sum()


def test_show_summary_prints_the_table_and_leaves_batchnorm_statistics_alone(capsys):
    torch.manual_seed(0)
    model = create_model("superlight").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    anatomy.show_summary(model)
    assert f"Total params: {count_parameters(model):,}" in capsys.readouterr().out
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_macs_counts_conv_and_linear_multiply_accumulates():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # 28*28 outputs * 4 channels * 1*3*3 = 28224
        nn.Conv2d(4, 4, 3, padding=1, groups=4),  # depthwise: 28*28 * 4 * 1*3*3 = 28224
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 28 * 28, 10),  # 3136 * 10 = 31360
    )
    assert anatomy.macs(model) == 28224 + 28224 + 31360


def test_memory_counts_parameters_and_activations():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
    result = anatomy.memory(model, batch_size=3)
    assert result["parameter_bytes"] == (18 + 2) * 4
    assert result["input_bytes"] == 3 * 28 * 28 * 4
    assert result["activation_bytes"] == 3 * 2 * (2 * 28 * 28) * 4  # conv and ReLU outputs
