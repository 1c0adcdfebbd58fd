"""SVG snapshots of the Memory pane at 80x24 and 120x40."""

from screens.app import make_app


def test_memory_pane_snapshot(snap_compare, fixed_devices):
    """The Memory pane at 80x24 with the default config on the fixed CPU-only device report: header (model,
    CPU), pane tabs with Memory active; on the left the what-if inputs (model "(run config)", method lora,
    precision auto, optimizer adamw_torch, batch size 4, grad accum 1, eval batch 8, seq length 1024, LoRA rank 16, grad
    ckpt, GPUs 1, GPU GiB "this machine"); on the right the what-if strip ("What-if = the run config ...")
    with the disabled "Apply to run config ^y" and "Reset ^l" buttons, "SmolLM2-135M · 0.13B params ·
    4,884,480 trainable · fp32 on CPU · peak …", the stacked bar (blue weights, green activations, yellow
    logits, brown framework overhead, grey free space, the yellow fit line ╎ and the budget ┃ at the right
    end), its scale and legend, the green "Fits: …" verdict, then (below the fold) the fit line with its 15% headroom and
    reason; footer with ^y Apply and ^l Reset."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="memory")
    assert snap_compare(app, terminal_size=(80, 24))


def test_memory_pane_snapshot_demo_size(snap_compare, fixed_devices):
    """The same at 120x40: every input on the left, and on the right the estimate, the bar with its
    legend, the verdict and the cheapest changes, with room to spare; the footer whole."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="memory")
    assert snap_compare(app, terminal_size=(120, 40))
