"""LoRA adapters on a tiny randomly initialised encoder: what trains, and the merge."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from models.exceptions import ModelsError
from models.lora import LoraSpec, attach_lora, check_method, merge_lora, parameter_counts
from models.network import MeanPoolClassifier

LABELS = ["negative", "neutral", "positive"]
QUERY = "encoder.encoder.layer.0.attention.self.query.weight"
EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"


def _tiny() -> MeanPoolClassifier:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    config._attn_implementation = "eager"
    encoder = BertModel(config, add_pooling_layer=False)  # type: ignore[no-untyped-call]
    return MeanPoolClassifier(encoder, config, LABELS, dropout=0.0)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1, 50, (6, 10), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[3:, 7:] = 0  # padded rows, as served
    return ids, mask


def _train(model: MeanPoolClassifier, steps: int = 5) -> None:
    ids, mask = _batch()
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(ids, mask), target)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    model.eval()


def test_only_adapters_and_head_train_and_the_manifest_counts_them() -> None:
    model = _tiny()
    _, total_before = parameter_counts(model)
    info = attach_lora(model, LoraSpec(rank=4, alpha=8))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert info["method"] == "lora" and (info["rank"], info["alpha"]) == (4, 8)
    assert info["target_modules"] == ["query", "key", "value", "dense"]
    assert info["trainable_parameters"] == sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )
    assert info["trainable_parameters"] < 0.25 * total_before


def test_merge_keeps_the_scores_and_leaves_a_plain_checkpoint() -> None:
    model = _tiny()
    plain_keys = set(model.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attach_lora(model, LoraSpec(rank=4, alpha=8, dropout=0.0))
    _train(model)
    ids, mask = _batch()
    with torch.inference_mode():
        adapted = model(ids, mask)

    merge_lora(model)

    with torch.inference_mode():
        merged = model(ids, mask)
    assert torch.allclose(adapted, merged, atol=1e-5)
    assert set(model.state_dict()) == plain_keys  # no adapter tensors left in the file
    after = model.state_dict()
    assert not torch.allclose(after[QUERY], before[QUERY])  # the adapters went into the weights
    assert torch.equal(after[EMBEDDINGS], before[EMBEDDINGS])  # not a target: frozen
    with pytest.raises(ModelsError, match="no LoRA adapters"):
        merge_lora(model)


def test_unknown_method_and_bad_targets_are_one_line_errors() -> None:
    assert check_method("lora") == "lora"
    with pytest.raises(
        ModelsError, match="unknown training method 'qlora'; expected one of full, lora"
    ):
        check_method("qlora")
    with pytest.raises(ModelsError, match="cannot attach LoRA adapters"):
        attach_lora(_tiny(), LoraSpec(target_modules=("no_such_layer",)))


def test_adapters_in_the_top_layers_only_leave_the_lower_layers_out_of_training() -> None:
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    info = attach_lora(model, LoraSpec(rank=4, alpha=8, layers=1))

    assert info["layers"] == [1]
    adapters = [n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    assert adapters and all(".layer.1." in n for n in adapters)
    everywhere = attach_lora(_tiny(), LoraSpec(rank=4, alpha=8))
    assert everywhere["layers"] == [0, 1]
    assert 0 < info["trainable_parameters"] < everywhere["trainable_parameters"]

    _train(model)
    merge_lora(model)
    after = model.state_dict()
    assert torch.equal(after[QUERY], before[QUERY])  # layer 0: no adapter, untouched
    top_query = QUERY.replace("layer.0", "layer.1")
    assert not torch.equal(after[top_query], before[top_query])


@pytest.mark.parametrize("layers", [0, 3])
def test_adapter_layers_outside_the_encoder_depth_are_refused(layers: int) -> None:
    with pytest.raises(ModelsError, match=r"1\.\.2"):
        attach_lora(_tiny(), LoraSpec(layers=layers))
