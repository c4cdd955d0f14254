import pytest
import torch

from mnist_lib.anatomy import final_receptive_field
from mnist_lib.errors import ConfigError
from mnist_lib.models import MODELS, count_parameters, create_model


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
    with pytest.raises(ConfigError, match="model must be one of light, lightest, superlight"):
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
