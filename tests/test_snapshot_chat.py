"""SVG snapshots of the Chat pane at 80x24 and 120x40."""

import json

from chat_test_support import make_run_dir

from screens.app import make_app


def chat_with_one_run(tmp_path, monkeypatch, tiny_model_dir, fixed_devices):
    adapter = tmp_path / "adapter-files"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": None}))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    make_run_dir(tmp_path / "runs", "demo", tiny_model_dir, adapter, steps=(2,), best_step=2, system_prompt="You are Quokka.")
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    return make_app(load_model=False, device_report=fixed_devices, initial_pane="chat")


def test_chat_pane_snapshot(snap_compare, fixed_devices, tmp_path, monkeypatch, tiny_model_dir):
    """The Chat pane at 80x24 before the model has loaded, with one finished run on disk.

    Must show: the pickers ("base model" vs "demo · final") and the blind A/B checkbox (off) on one
    line; two bordered columns titled "◀ base · SmolLM2-135M-Instruct" and "▶ demo · final", each with
    the hint to type a message; the input saying the base model is not loaded; the status line
    (greedy, max=128, the run's system prompt 'You are Quokka.'); the compact footer, whole: Settings,
    Blind, Deck and New keys, ^q Quit, F1 Help and ^p palette (no `i Type`: there is no box to type
    in before the model loads).
    """
    app = chat_with_one_run(tmp_path, monkeypatch, tiny_model_dir, fixed_devices)
    assert snap_compare(app, terminal_size=(80, 24))


def test_chat_pane_snapshot_demo_size(snap_compare, fixed_devices, tmp_path, monkeypatch, tiny_model_dir):
    """The same at 120x40: wider columns side by side (each with the hint), the same toolbar, input,
    status line and footer."""
    app = chat_with_one_run(tmp_path, monkeypatch, tiny_model_dir, fixed_devices)
    assert snap_compare(app, terminal_size=(120, 40))
