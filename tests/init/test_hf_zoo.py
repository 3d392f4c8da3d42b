"""A fast sample of the Hugging Face zoo sweep (``benchmarks/hf_zoo.py``, docs/hf_zoo.md): one class for each
structure the sweep taught tracing, built tiny from its config and checked for the sweep's promises 1-4 (nothing
unknown and traced, zero logits on inputs that are not the example, identity blocks, random schemes complete)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch

from detinit import initialize

transformers = pytest.importorskip("transformers")  # in the [test] extra
logging.getLogger("transformers").setLevel(logging.ERROR)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import hf_zoo  # noqa: E402

SAMPLE = [
    ("causal LM", "mbart", "MBartForCausalLM"),  # token table of an Embedding subclass, tied to the output
    ("causal LM", "bert", "BertLMHeadModel"),  # a bias shared by the LM head and its decoder layer
    ("causal LM", "cohere", "CohereForCausalLM"),  # attention and MLP side by side in one residual sum
    ("causal LM", "mixtral", "MixtralForCausalLM"),  # experts as stacked matrices, a router's gate
    ("causal LM", "qwen2_moe", "Qwen2MoeForCausalLM"),  # routed and shared experts summed
    ("causal LM", "gpt_oss", "GptOssForCausalLM"),  # experts' biases selected per token
    ("sequence classification", "llama", "LlamaForSequenceClassification"),  # the last real token's score
    ("sequence classification", "bert", "BertForSequenceClassification"),  # [CLS], first token assumed 0
    ("audio classification", "whisper", "WhisperForAudioClassification"),  # input_features, encoder only
    ("speech", "speech_to_text", "Speech2TextForConditionalGeneration"),  # input_features, channels last
    ("speech", "whisper", "WhisperForConditionalGeneration"),  # input_features of a fixed window
    ("image classification", "vit", "ViTForImageClassification"),
    ("image classification", "resnet", "ResNetForImageClassification"),  # out += shortcut, in place
    ("image classification", "swin", "SwinForImageClassification"),  # relative-position tables by index
    ("image classification", "pvt", "PvtForImageClassification"),  # positions interpolated before the add
    ("vision encoder", "siglip_vision_model", "SiglipVisionModel"),  # attention pooling's learned probe
    ("causal LM", "bart", "BartForCausalLM"),  # the embedding norm at the post-norm fixed point
    ("sequence classification", "modernbert", "ModernBertForSequenceClassification"),  # escape after settling
    ("sequence classification", "bart", "BartForSequenceClassification"),  # reads each row's last </s>
    ("base", "led", "LEDModel"),  # a token table looked up for padding too, concatenated before its norm
    ("causal LM", "afmoe", "AfmoeForCausalLM"),  # a sandwich norm after routed + shared experts
    ("base", "llava", "LlavaModel"),  # a vision tower the text example never reaches, traced on its own
    ("causal LM", "gemma3", "Gemma3ForConditionalGeneration"),  # its SigLIP tower's pooling probe
    ("causal LM", "qwen3_next", "Qwen3NextForCausalLM"),  # a state recurrence; A_log drawn: its quantiles
    ("causal LM", "mamba", "MambaForCausalLM"),  # a selective scan, S = dA S + dB u, no residual
    ("base", "cpmant", "CpmAntModel"),  # attention scores plus a position bias, no residual
    ("base", "inkling_text", "InklingTextModel"),  # a branch ending in a short convolution with its own skip
    ("base", "inkling2_text", "Inkling2TextModel"),  # short convolutions scaled by 1/sqrt(k + 1): (sqrt(5) - 1) I
    ("masked LM", "yoso", "YosoForMaskedLM"),  # acos of q.k: W_Q = W_K is NaN, the default falls back to kv_zero
    ("vision encoder", "levit", "LevitModel"),  # Linear + BatchNorm reshaped back; zero bias tables kept
    ("base", "prophetnet", "ProphetNetModel"),  # one projection's outputs for two streams concatenated
    ("base", "jetmoe", "JetMoeModel"),  # experts added into their rows with index_add, then a bias
    ("base", "apertus", "ApertusModel"),  # an activation's constants, set by the constructor
    ("base", "minicpm_ocr", "MiniCPMOcrModel"),  # its language model's own initialiser
    ("causal LM", "openai-gpt", "OpenAIGPTLMHeadModel"),  # tables straight into post-norm blocks, scaled
    ("base", "zamba", "ZambaModel"),  # x_proj_weight[:, None] @ h: a stack of weights on the left
    ("base", "recurrent_gemma", "RecurrentGemmaModel"),  # block-diagonal gates by baddbmm
    ("base", "wav2vec2", "Wav2Vec2Model"),  # conv features no wider than the stream, as in the defaults
    ("speech", "granite_speech", "GraniteSpeechForConditionalGeneration"),  # an encoder taking hidden_states,
    # a Q-Former projector no input reaches, traced on features of its width
    ("base", "mllama", "MllamaModel"),  # a vision tower taking images as tiles with their aspect-ratio ids
    ("seq2seq", "switch_transformers", "SwitchTransformersModel"),  # experts as modules, some never routed to
]


@pytest.mark.parametrize("entry", SAMPLE, ids=[e[2] for e in SAMPLE])
def test_the_sample_keeps_zeros_promises(entry):
    row = hf_zoo.check(entry, time_limit=0)
    assert row["built"], row.get("reason")
    assert row.get("kept"), row.get("error") or [d for ok, d in row["promises"].values() if ok is False]


def test_a_model_that_cannot_be_traced_says_so_and_strict_refuses():
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=16)
    model = transformers.GPT2LMHeadModel(config)
    model.main_input_name = "inputs_embeds"  # a main input detinit makes no example of
    with pytest.warns(UserWarning, match="GPT2LMHeadModel was not traced .*inputs_embeds"):
        report = initialize(model, "zero")
    assert any("example_inputs=" in note for note in report.notes) and "note: " in str(report)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"strict=True.*not traced.*example_inputs="):
        initialize(model, "zero", strict=True)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing written


def test_the_report_says_which_first_token_it_assumed():
    model = transformers.BertForSequenceClassification(
        transformers.BertConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            num_labels=3,
        )  # fmt: skip
    )
    report = initialize(model, "zero")
    assert any("starting with token 0 (assumed)" in note for note in report.notes)
    ids = torch.randint(1, 64, (4, 9))
    ids[:, 0] = 0
    model.eval()
    assert model(input_ids=ids).logits.abs().max() == 0
    ids[:, 0] = 5  # another first token: the zero output reading [CLS] is not promised
    assert model(input_ids=ids).logits.abs().max() > 0


def test_a_speech_encoder_inside_a_head_has_its_mask_embedding_traced():
    """Wav2Vec2ForCTC never reads its encoder's mask embedding (only the encoder's own ``mask_time_indices``
    reaches it): the encoder is traced alone, on waveforms with every other frame masked."""
    model = hf_zoo.build("wav2vec2", "Wav2Vec2ForCTC")
    report = initialize(model, "zero", strict=True)
    assert report["wav2vec2.masked_spec_embed"].role == "token"
    assert model.wav2vec2.masked_spec_embed.abs().min() > 0
