"""Feature visualisation on the CPU: every channel of a VGG16 layer optimised in batches against the
same channels one at a time (the loop that Lucent's and tf-keras-vis' users write), same method."""

import time

from .suite import _target, row


def _layer(work, layer, side, steps, alone, quick):
    """(row, details) for one layer: channels/s batched against a sample optimised one by one."""
    import montage

    common = dict(layers=layer, size=side, steps=steps, quiet=True, overwrite=True)
    montage.optimize("vgg16", work / "warm", channels="0", **common)        # load, trace and compile once
    t = time.perf_counter()
    batched = montage.optimize("vgg16", work / "batched", **common)
    t_batched = time.perf_counter() - t
    block = batched["views"][0]["blocks"][0]
    t = time.perf_counter()
    one = montage.optimize("vgg16", work / "one", channels=alone, batch_size=1, **common)
    t_one = time.perf_counter() - t
    n, m = block["grid"]["n"], one["views"][0]["blocks"][0]["grid"]["n"]
    fast, slow = n / t_batched, m / t_one
    gained = sum(e > s for s, e in zip(block["objective"]["start"], block["objective"]["end"]))
    return (row(f"optimize: every channel of {layer} ({n}), {side} px, {steps} steps, batched", fast, "channels/s",
                slow, "one channel at a time", fast / slow, ">= 3x", _target(quick, fast / slow >= 3)),
            {"layer": layer, "channels": n, "size": side, "steps": steps, "batched_s": t_batched,
             "one_at_a_time_channels": m, "one_at_a_time_s": t_one, "channels_that_gained": int(gained)})


def optimize_cpu(work, quick):
    """A shallow layer, where each pass's fixed cost is what batching saves, and a deeper one, where
    the convolutions' arithmetic is (it grows with the batch on a CPU: there batching saves little)."""
    cases = [("block1_conv1", 32, 4, "0-1")] if quick else [("block1_conv1", 64, 64, "0-15"),
                                                              ("block2_conv1", 64, 64, "0-15")]
    rows, details = [], []
    for i, (layer, side, steps, alone) in enumerate(cases):
        r, d = _layer(work / str(i), layer, side, steps, alone, quick)
        rows.append(r)
        details.append(d)
    return rows, {"layers": details}
