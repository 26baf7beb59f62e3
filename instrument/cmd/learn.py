"""`noclip learn`: the terminal's MIDI learn. For each parameter asked for (or named with --param),
wait for a control to move and write its binding into the patch file (learn.py does the work;
the window's L key does the same mid-show)."""

from __future__ import annotations

import argparse
import sys
import time

from ..control.midi import MidiControl, default_tiers
from ..events import ControlQueue
from ..learn import Learn
from ..patch import load_patch
from ..report import Reporter


def cmd_learn(args: argparse.Namespace) -> int:
    """Interactive: for each parameter (asked for, or --param), wait for a control and bind it."""
    patch = load_patch(args.patch)
    reporter = Reporter()
    midi = MidiControl(ControlQueue(), reporter, default_tiers(patch.midi, str(patch.path), reporter),
                       patterns=args.midi or [""], virtual=False)
    if midi.backend is None:
        print("noclip: learn needs MIDI ports, and there is no MIDI system here", file=sys.stderr)
        return 2
    midi.start()
    assert patch.path is not None  # load_patch read it from a file
    learn = Learn(midi, patch.path)
    print(f"MIDI inputs: {', '.join(midi.ports) or 'none yet (plug one in)'}")
    queue = list(args.param)
    try:
        while True:
            target = queue.pop(0) if queue else (input("parameter or command (empty ends): ").strip()
                                                 if not args.param else "")
            if not target:
                return 0
            if target not in learn.targets:
                print(f"  unknown: {target} (see `noclip params`)")
                continue
            learn.arm(target)
            print(f"  move a control for {target} …")
            while learn.active:
                time.sleep(0.02)
                midi.poll()  # no show here to poll the ports
                if learn.poll() is not None or not learn.active:
                    break
            print(f"  {learn.status}  (written to {patch.path})")
    except (KeyboardInterrupt, EOFError):
        print()
        return 0
    finally:
        midi.close()

