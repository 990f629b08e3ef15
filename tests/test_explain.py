"""Explanations: every method on both families and two input sizes, hand-checked Grad-CAM, the metrics
on hand-made maps, image selection, the figures' layout, and the whole `explain` pipeline on a tiny study."""

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import yaml
from PIL import Image
from pytorch_grad_cam.utils.image import scale_cam_image

from conftest import tiny_study
from vitswin.config import ExplainConfig, load_config, validate_config
from vitswin.errors import VitswinError
from vitswin.explain import metrics
from vitswin.explain.figures import BAR_INCHES, CELL_INCHES, DPI, GRID_CELLS, TITLE_INCHES, ModelColumn, heatmap_grid
from vitswin.explain.methods import explain_batch
from vitswin.explain.runner import explain_runs
from vitswin.explain.selection import select_images
from vitswin.explain.targets import cam_target
from vitswin.model.network import build_network
from vitswin.registry import METHODS
from vitswin.study import train_models

CPU_CONFIG = load_config(Path(__file__).resolve().parents[1] / "configs" / "cpu-cifar10.yaml")


def small_network(key: str, size: int) -> torch.nn.Module:
    """The 32-pixel model `key` of configs/cpu-cifar10.yaml (random weights), built for `size` pixels."""
    model = CPU_CONFIG.models[key].model_copy(update={"input_size": size})
    torch.manual_seed(0)
    return build_network(model, 10).eval()


def assert_good_maps(maps: np.ndarray, batch: int, size: int) -> None:
    assert maps.shape == (batch, size, size)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    assert (maps.reshape(batch, -1).std(1) > 1e-3).all(), "a map is constant"


@pytest.mark.parametrize("size", [32, 48])
@pytest.mark.parametrize("key", ["vit", "swin"])
def test_every_method_gives_finite_varied_maps_of_the_input_size(key: str, size: int) -> None:
    network = small_network(key, size)
    inputs = torch.randn(3, 3, size, size)
    for method in METHODS.names():
        if method == "rollout" and key == "swin":
            continue
        assert_good_maps(explain_batch(network, inputs, torch.tensor([0, 3, 7]), method), 3, size)


def hand_made_gradcam(
    network: torch.nn.Module, inputs: torch.Tensor, classes: torch.Tensor, layer: torch.nn.Module, to_grid
) -> np.ndarray:
    """Grad-CAM written out: channel weights are the spatial mean of the gradients, map = ReLU(weighted sum)."""
    captured = {}
    hook = layer.register_forward_hook(lambda _m, _i, output: captured.update(activation=output))
    logits = network(inputs)
    hook.remove()
    activation = captured["activation"]
    (gradient,) = torch.autograd.grad(logits.gather(1, classes.unsqueeze(1)).sum(), activation)
    activation, gradient = to_grid(activation.detach()), to_grid(gradient)  # (B, C, h, w)
    cam = (gradient.mean((2, 3), keepdim=True) * activation).sum(1).clamp(min=0)
    resized = scale_cam_image(cam.numpy(), (inputs.shape[-1], inputs.shape[-2]))  # cv2 order: width, height
    return scale_cam_image(resized)  # min-max scaled again after resizing, as the library does


def test_vit_gradcam_drops_prefix_tokens_and_uses_the_patch_grid() -> None:
    network = timm.create_model(
        "vit_tiny_patch16_224", num_classes=5, img_size=(32, 48), patch_size=8, embed_dim=32, depth=2, num_heads=2, reg_tokens=2
    ).eval()
    assert network.num_prefix_tokens == 3  # class token and two register tokens
    inputs, classes = torch.randn(2, 3, 32, 48), torch.tensor([1, 4])

    def to_grid(tokens: torch.Tensor) -> torch.Tensor:  # 4 x 6 patches after 3 prefix tokens
        return tokens[:, 3:].reshape(2, 4, 6, -1).permute(0, 3, 1, 2)

    expected = hand_made_gradcam(network, inputs, classes, network.blocks[-1].norm1, to_grid)
    maps = explain_batch(network, inputs, classes, "gradcam")
    assert maps.shape == (2, 32, 48)
    np.testing.assert_allclose(maps, expected, atol=1e-4)


def test_swin_gradcam_reads_channels_last_at_any_window_size() -> None:
    network = timm.create_model(
        "swin_tiny_patch4_window7_224",
        num_classes=5,
        img_size=48,
        patch_size=2,
        window_size=3,
        embed_dim=16,
        depths=(2, 2),
        num_heads=(1, 2),
    ).eval()
    inputs, classes = torch.randn(2, 3, 48, 48), torch.tensor([0, 2])
    expected = hand_made_gradcam(
        network, inputs, classes, network.layers[-1].blocks[-1].norm1, lambda nhwc: nhwc.permute(0, 3, 1, 2)
    )
    np.testing.assert_allclose(explain_batch(network, inputs, classes, "gradcam"), expected, atol=1e-4)


def test_swin_reshape_moves_channels_first() -> None:
    """Swin's norm1 keeps (B, H, W, C): read as channels-last (a flattened (B, L, C) layer would be read as tokens,
    from its own output's shape)."""
    target = cam_target(small_network("swin", 32), (32, 32))
    nhwc = torch.randn(2, 4, 4, 8)
    assert target.layout == "channels-last" and torch.equal(target.reshape(nhwc), nhwc.permute(0, 3, 1, 2))


def test_a_cnn_is_explained_and_unknown_methods_are_refused() -> None:
    network = timm.create_model("resnet18", num_classes=3)
    assert explain_batch(network, torch.randn(2, 3, 64, 64), torch.tensor([0, 1]), "gradcam").shape == (2, 64, 64)
    with pytest.raises(VitswinError, match=re.escape("unknown explanation method 'gradcam+'; choose one of: gradcam, ")):
        explain_batch(network, torch.randn(1, 3, 32, 32), torch.tensor([0]), "gradcam+")
    with pytest.raises(VitswinError, match="attention rollout needs a ViT"):
        explain_batch(small_network("swin", 32), torch.randn(1, 3, 32, 32), torch.tensor([0]), "rollout")


def test_rollout_of_a_batch_equals_rollout_image_by_image() -> None:
    network = small_network("vit", 32)
    inputs = torch.randn(3, 3, 32, 32)
    batch = explain_batch(network, inputs, torch.zeros(3, dtype=torch.long), "rollout")
    single = np.concatenate([explain_batch(network, x[None], torch.zeros(1, dtype=torch.long), "rollout") for x in inputs])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert all(block.attn.fused_attn == timm.layers.use_fused_attn() for block in network.blocks)  # restored


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_base_patch16_224", "swin_base_patch4_window7_224"])
def test_base_models_at_224_pixels(name: str) -> None:
    torch.manual_seed(0)
    network = timm.create_model(name, num_classes=10).eval()
    inputs = torch.randn(2, 3, 224, 224)
    for method in ("gradcam", "gradcam++", "hirescam", "layercam", "xgradcam", "eigencam"):
        assert_good_maps(explain_batch(network, inputs, torch.tensor([2, 5]), method), 2, 224)


def test_concentration_of_uniform_and_single_pixel_maps() -> None:
    uniform, spike, empty = np.ones((10, 10)), np.zeros((10, 10)), np.zeros((10, 10))
    spike[3, 4] = 1
    scores = metrics.concentration(np.stack([uniform, spike, empty]))
    np.testing.assert_allclose(scores["top10_share"], [0.1, 1.0, 0.1])
    np.testing.assert_allclose(scores["gini"], [0.0, 0.99, 0.0], atol=1e-12)
    np.testing.assert_allclose(scores["entropy"], [1.0, 0.0, 1.0], atol=1e-12)


def test_agreement_and_pointing_on_hand_made_maps() -> None:
    left = np.tile(np.linspace(1, 0, 10), (10, 1))  # brightest on the left
    same = metrics.agreement(left[None], left[None] * 3)
    opposite = metrics.agreement(left[None], left[None, :, ::-1])
    assert same["rank_corr"][0] == pytest.approx(1) and same["top20_iou"][0] == 1
    assert opposite["rank_corr"][0] == pytest.approx(-1) and opposite["top20_iou"][0] == 0
    mask = np.zeros((1, 10, 10), dtype=bool)
    mask[0, :, :3] = True  # the object fills the left 30 %; one pixel of tolerance makes that 40 %
    scores = metrics.pointing(left[None], mask)
    assert scores["pointing_hit"][0] == 1 and scores["mask_fraction"][0] == pytest.approx(0.3)
    assert scores["pointing_random"][0] == pytest.approx(0.4)
    assert scores["mask_mass"][0] == pytest.approx(left[:, :3].sum() / left.sum())
    assert metrics.pointing(left[None, :, ::-1], mask)["pointing_hit"][0] == 0
    peak_beside_object = np.zeros((1, 10, 10))
    peak_beside_object[0, 5, 3] = 1
    assert metrics.pointing(peak_beside_object, mask)["pointing_hit"][0] == 1  # within the tolerance


class LeftHalfDetector(torch.nn.Module):
    """Class 1 when the left half is bright: a model whose evidence lies only in the left half."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = x[:, :, :, : x.shape[-1] // 2].mean((1, 2, 3))
        return torch.stack([-evidence, evidence], 1) * 10


def test_deletion_of_the_evidence_beats_a_random_order() -> None:
    inputs = torch.zeros(4, 3, 16, 16)
    inputs[:, :, :, :8] = 1
    maps = np.zeros((4, 16, 16), dtype=np.float32)
    maps[:, :, :8] = 1  # the right explanation
    classes = torch.ones(4, dtype=torch.long)
    curves = metrics.perturbation_curves(LeftHalfDetector(), inputs, maps, classes, steps=8)
    baseline = metrics.random_maps(4, (4, 4), (16, 16), torch.Generator().manual_seed(0))
    assert baseline.shape == (4, 16, 16) and len(np.unique(baseline)) > 100
    random = metrics.perturbation_curves(LeftHalfDetector(), inputs, baseline, classes, steps=8)
    assert curves["deletion"].shape == (4, 9)
    assert curves["deletion"][:, 4].max() < 0.51  # half the pixels gone: all the evidence gone
    assert (metrics.area_under_curve(curves["deletion"]) < metrics.area_under_curve(random["deletion"]) - 0.1).all()
    np.testing.assert_allclose(curves["insertion"][:, -1], curves["deletion"][:, 0])  # all revealed = the original
    assert metrics.area_under_curve(np.ones((1, 5)))[0] == pytest.approx(1)


def test_selection_spreads_over_classes_and_filters() -> None:
    labels = torch.arange(10).repeat(5)
    chosen = select_images(labels, 10, seed=0)
    assert sorted(labels[chosen].tolist()) == list(range(10))
    assert torch.equal(chosen, select_images(labels, 10, seed=0)) and not torch.equal(chosen, select_images(labels, 10, 1))
    a, b = labels.numpy().copy(), labels.numpy().copy()
    b[[3, 7]] = 0  # model b differs (and is wrong) on images 3 and 7
    assert sorted(select_images(labels, 10, 0, "disagree", [a, b]).tolist()) == [3, 7]
    assert sorted(select_images(labels, 10, 0, "wrong", [a, b]).tolist()) == [3, 7]
    with pytest.raises(VitswinError, match="no test image qualifies for --select wrong; use --select sample"):
        select_images(labels, 10, 0, "wrong", [a, a])
    with pytest.raises(VitswinError, match="pass two or more run folders"):
        select_images(labels, 10, 0, "disagree", [a])


def test_figure_layout_titles_and_size() -> None:
    images = np.random.default_rng(0).random((3, 40, 40, 3))
    columns = [
        ModelColumn("vit", np.random.default_rng(1).random((3, 40, 40)), ["cat", "dog", "cat"]),
        ModelColumn("swin", np.random.default_rng(2).random((3, 40, 40)), ["cat", "cat", "cat"]),
    ]
    figure = heatmap_grid(images, ["cat", "dog", "dog"], columns, overlay=True)
    *panels, bar = figure.axes  # a block of 3 panels per image, side by side in one row, then the colour bar
    titles = [[axis.get_title() for axis in panels[block * 3 : (block + 1) * 3]] for block in range(3)]
    assert titles == [
        ["true: cat", "vit: cat", "swin: cat"],
        ["true: dog", "vit: dog", "swin: cat (wrong)"],
        ["true: dog", "vit: cat (wrong)", "swin: cat (wrong)"],
    ]
    assert [(axis.get_subplotspec().rowspan.start, axis.get_subplotspec().colspan.start) for axis in panels] == [
        (0, col) for col in range(9)
    ]
    assert bar.get_ylim() == (0.0, 1.0) and "heatmap" in bar.get_ylabel()
    width, height = figure.get_size_inches() * DPI
    assert (round(width), round(height)) == (
        round((9 * CELL_INCHES + BAR_INCHES) * DPI),
        round((CELL_INCHES + TITLE_INCHES) * DPI),
    )
    sixteen = [ModelColumn(name, np.zeros((16, 8, 8)), ["cat"] * 16) for name in ("vit", "swin")]
    many = heatmap_grid(np.zeros((16, 8, 8, 3)), ["cat"] * 16, sixteen, overlay=False)
    assert many.get_size_inches()[0] == pytest.approx(GRID_CELLS * CELL_INCHES + BAR_INCHES)  # 4 blocks a row: 4 rows


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tmp_path = tmp_path_factory.mktemp("explain")
    return [Path(summary.run_dir) for summary in train_models(validate_config(tiny_study(tmp_path)))]


def test_explain_writes_figures_maps_and_measurements(tiny_runs: list[Path]) -> None:
    out = explain_runs(tiny_runs, ExplainConfig(images=6, batch_size=4, steps=4))
    assert out == tiny_runs[0].parent.parent / "explain" / "gradcam" / "seed-0"
    for name in ("overlay.png", "heatmaps.png"):  # 6 images of 3 panels: 4 blocks a row, 2 rows
        with Image.open(out / name) as png:
            assert png.size == (round((12 * CELL_INCHES + BAR_INCHES) * DPI), round(2 * (CELL_INCHES + TITLE_INCHES) * DPI))
    with np.load(out / "maps.npz") as saved:
        assert saved["vit/maps"].shape == (6, 16, 16) and saved["swin/maps"].shape == (6, 16, 16)
        assert len(set(saved["labels"].tolist())) == 6  # six images, six different classes
    with open(out / "attention.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["model"] for row in rows] == ["vit"] * 6 + ["swin"] * 6
    assert all(
        float(row["pointing_hit"]) in (0, 1) and 0 < float(row["mask_fraction"]) < float(row["pointing_random"]) < 1
        for row in rows
    )
    summary = json.loads((out / "attention.json").read_text())
    assert set(summary["per_model"]) == {"vit", "swin"} and "vit vs swin" in summary["agreement"]
    assert set(summary["sanity"]["vit"]) == {
        "randomisation_rank_corr",
        "deletion_auc",
        "random_deletion_auc",
        "pointing_game",
        "pointing_random",
    }
    assert sum(len(per_class) for per_class in summary["per_class"].values()) == 12


def test_explain_targets_the_true_class_when_asked(tiny_runs: list[Path], tmp_path: Path) -> None:
    out = explain_runs(tiny_runs[:1], ExplainConfig(images=5, target="true", select="wrong", road=False), tmp_path)
    with open(out / "attention.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["explained"] == row["class"] and row["correct"] == "False" for row in rows)
    assert not (out / "agreement.csv").exists()


def test_explain_refuses_runs_on_different_data(tiny_runs: list[Path], tmp_path: Path) -> None:
    other_run = tmp_path / "other" / "vit"
    shutil.copytree(tiny_runs[0], other_run)
    config = yaml.safe_load((other_run / "config.yaml").read_text())
    config["data"]["test_size"] = 50
    (other_run / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(VitswinError, match="was trained on different data .* explain runs of one study together"):
        explain_runs([tiny_runs[0], other_run], ExplainConfig(images=2))
