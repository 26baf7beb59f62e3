"""Time the analog chain the way a show runs it: Compositor.render (+ ctx.finish), with and without
reading the frame back, at 720p and 1080p output. `python tools/bench_chain.py [--patch NAME]`."""

from __future__ import annotations

import argparse
import statistics
import time

from instrument.clock import OfflineClock
from instrument.params import REGISTRY, ParamBank
from instrument.patch import load_patch
from instrument.render.compositor import Compositor
from instrument.render.gl import headless_context, read_rgb
from instrument.report import Reporter
from instrument.scene import make_scene


def bench(ctx, patch, output: tuple[int, int], frames: int, readback: bool) -> list[float]:
    """Milliseconds per frame of scene + composite (+ readback), frame by frame."""
    scene = make_scene(patch.scene, ctx, patch.size)
    comp = Compositor(ctx, patch.chain, patch.size, output, Reporter(), watch=False)
    bank = ParamBank(REGISTRY)
    for name, value in patch.params.items():
        bank.set(name, value, immediate=True)
    clock = OfflineClock(60)
    times = []
    try:
        for i in range(frames + 10):
            tick = clock.tick()
            fp = bank.advance(tick.frame, tick.time, tick.dt)
            t = time.perf_counter()
            fbo = comp.render(scene.render(fp), None, fp)
            if readback:
                read_rgb(fbo)
            else:
                ctx.finish()
            if i >= 10:
                times.append(time.perf_counter() - t)
    finally:
        comp.release()
        scene.release()
    return [t * 1000 for t in times]


def passes(ctx, patch, frames: int) -> dict[str, float]:
    """Median ms of each chain pass alone (finish after each), to see where the time goes."""
    scene = make_scene(patch.scene, ctx, patch.size)
    comp = Compositor(ctx, patch.chain, patch.size, (1280, 720), Reporter(), watch=False)
    bank = ParamBank(REGISTRY)
    for name, value in patch.params.items():
        bank.set(name, value, immediate=True)
    fp = bank.advance(0, 0.0, 1 / 60)
    src = scene.render(fp)
    out: dict[str, list[float]] = {}
    chain = comp.chain
    for _ in range(frames):
        textures = {"source": src, "scene": src, "original": src}
        source = src
        for p in chain.passes:
            if p.spec.feedback:
                textures[p.spec.name + "_prev"] = p.texture
                p.current ^= 1
            textures["source"] = source
            ctx.finish()
            t = time.perf_counter()
            p.program.bind_textures(textures)
            p.program.set_params(fp, chain.enums)
            p.program.set("u_frame", fp.frame)
            p.program.set("u_resolution", p.size)
            p.program.set("u_source_size", source.size)
            from instrument.render.gl import draw

            draw(p.program, p.targets[p.current][1])
            ctx.finish()
            out.setdefault(p.spec.name, []).append(time.perf_counter() - t)
            source = textures[p.spec.name] = p.texture
    comp.release()
    scene.release()
    return {k: statistics.median(v) * 1000 for k, v in out.items()}


def calibrate(ctx, frames: int = 20) -> float:
    """Median ms of one plain copy pass at 1280x720, finished: the machine's yardstick right now.

    Back-to-back draws into one framebuffer look far cheaper on llvmpipe (a later opaque draw
    discards the earlier one's work), so every figure here is a finished, dependent pass.
    """
    from instrument.render.gl import draw, load_program, quad_buffer, target

    quad = quad_buffer(ctx)
    prog = load_program(ctx, "core/output.frag", quad)
    src, _ = target(ctx, (640, 480))
    tex, fbo = target(ctx, (1280, 720))
    src.use(0)
    prog.set("source", 0)
    prog.set("fade", 1.0)
    prog.set("fit", 2)
    times = []
    for _ in range(frames):
        ctx.finish()
        t = time.perf_counter()
        draw(prog, fbo)
        ctx.finish()
        times.append(time.perf_counter() - t)
    for obj in (prog, src, tex, fbo, quad):
        obj.release()
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patch", default="default")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ctx = headless_context()
    print(ctx.info["GL_RENDERER"])
    print(f"yardstick: the output pass alone at 1280x720 {calibrate(ctx):.2f} ms")
    patch = load_patch(args.patch)
    for name, ms in passes(ctx, patch, 30).items():
        print(f"  pass {name:<9} {ms:6.2f} ms (alone, finished)")
    # a shared machine's neighbours show up as slow frames: report the median and the quiet
    # (10th percentile) frame, over rounds that alternate the cases
    runs: dict[tuple, list[float]] = {}
    for _ in range(args.rounds):
        for size in ((1280, 720), (1920, 1080)):
            for readback in (False, True):
                runs.setdefault((size, readback), []).extend(
                    bench(ctx, patch, size, args.frames, readback)
                )
    for (size, readback), times in runs.items():
        med, quiet = statistics.median(times), statistics.quantiles(times, n=10)[0]
        print(
            f"{size[0]}x{size[1]} {'with readback' if readback else 'render+finish':<14} "
            f"median {med:6.2f} ms ({1000 / med:5.1f} fps)  quiet {quiet:6.2f} ms "
            f"({1000 / quiet:5.1f} fps)"
        )
    print(f"yardstick again: {calibrate(ctx):.2f} ms")


if __name__ == "__main__":
    main()
