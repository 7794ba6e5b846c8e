"""Feature visualisation on the CPU: every channel of a VGG16 layer optimised in batches against the
same channels one at a time (the loop that Lucent's and tf-keras-vis' users write), same method."""

import time

from .suite import _target, row


def optimize_cpu(work, quick):
    """Channels/s batched (one channel per batch item) against one channel per pass, same run."""
    import montage

    layer, side, steps = ("block1_conv1", 32, 4) if quick else ("block2_conv1", 64, 64)
    alone = "0-1" if quick else "0-15"       # the slow loop on a sample: channels/s is what is compared
    common = dict(layers=layer, size=side, steps=steps, quiet=True, overwrite=True)
    montage.optimize("vgg16", work / "warm", channels="0", **common)        # load, trace and compile once
    t = time.perf_counter()
    batched = montage.optimize("vgg16", work / "batched", **common)
    t_batched = time.perf_counter() - t
    n = batched["views"][0]["blocks"][0]["grid"]["n"]
    t = time.perf_counter()
    one = montage.optimize("vgg16", work / "one", channels=alone, batch_size=1, **common)
    t_one = time.perf_counter() - t
    m = one["views"][0]["blocks"][0]["grid"]["n"]
    fast, slow = n / t_batched, m / t_one
    block = batched["views"][0]["blocks"][0]
    gained = sum(e > s for s, e in zip(block["objective"]["start"], block["objective"]["end"]))
    rows = [row(f"optimize: every channel of {layer} ({n}), {side} px, {steps} steps, batched", fast, "channels/s",
                slow, "one channel at a time", fast / slow, ">= 3x", _target(quick, fast / slow >= 3))]
    return rows, {"layer": layer, "channels": n, "size": side, "steps": steps, "batched_s": t_batched,
                  "one_at_a_time_channels": m, "one_at_a_time_s": t_one, "batch_size": None,
                  "channels_that_gained": int(gained)}
