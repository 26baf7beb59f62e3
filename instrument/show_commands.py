"""The show's own commands: loading a patch, the tape's tracking jolt, takes, the tempo tap, outside
clocks and the audio input's features. Apart from show.py so the loop reads as the loop; a mixin
of the Show, whose state they change (the bank, the beat, the picture, the outputs)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .clock import SYNC, BeatClock
from .control.modulators import Modulators, build
from .control.oscroute import PATCH_NAME
from .events import ControlEvent
from .params import REGISTRY, ParamBank
from .patch import ChainPreset, ConfigError, Patch, load_patch
from .picture import Picture
from .ports import Output, is_deck
from .report import Reporter
from .resources import data_dir

log = logging.getLogger("noclip")

# The show's commands (the catalogue puts them into the command table): handled in `self.commands`.
COMMANDS = {
    "seed/next": "next noise seed",
    "seed/prev": "previous noise seed",
    "patch/load": "<name or path>: load a patch (a bad one is reported, the show goes on)",
    "chain/reload": "rebuild the shader chain from its files",
    "tracking/jump": "[strength 0..1]: jolt the tape's tracking; it settles by itself",
    "quit": "end the show",
    "record/start": "start a new take (the output, as the audience sees it)",
    "record/stop": "finish the current take",
    "record/toggle": "start or stop a take",
    "tap": "tap the tempo: two taps or more set it, and the beat lands on the tap",
    "audio": "(from the audio input) {level, low, mid, high, onset}: what the sound is doing",
    SYNC: "(from outside clocks) {source, tempo, beat, playing, numerator}: where the music is",
}


class ShowCommands:
    """The handlers of COMMANDS that are the show's own (show.py wires them by name)."""

    # the Show's state they work on (set in Show.__init__)
    bank: ParamBank
    beat: BeatClock
    picture: Picture
    reporter: Reporter
    outputs: list[Output]
    modulators: Modulators
    patch: Patch
    chain_preset: ChainPreset | None
    audio: dict[str, float]
    _on_patch: list[Callable[[Patch], None]]
    _wall: float
    _show_time: float

    def _modulators(self, patch: Patch) -> Modulators:
        try:
            return build(patch.modulators)
        except ValueError as exc:
            self.reporter.error("modulators", str(exc))
            return Modulators()

    def _load_patch(self, e: ControlEvent) -> None:
        name = e.value[0] if isinstance(e.value, (tuple, list)) and e.value else e.value
        if not isinstance(name, str) or not name:
            raise ValueError("patch/load needs a patch name or path")
        try:
            # from beyond this machine a name only, looked up among the bundled patches, never a path
            # (OSC refuses paths from such senders already; this holds whatever the entrance)
            patch = load_patch(self._patch_by_name(name) if e.remote else name)
        except (ConfigError, FileNotFoundError) as exc:
            self.reporter.error("patch", str(exc))
            return
        if self.chain_preset is not None:  # this show's own tape, whatever the patch says (a follower's)
            patch = self.chain_preset.apply(patch)
        if not self.picture.load(patch):
            return
        for spec in REGISTRY:
            if spec.name != "recording":  # the deck's state, not the patch's: a take runs on through a load
                self.bank.set(spec.name, patch.params.get(spec.name, spec.default))
        self.modulators = self._modulators(patch)
        self.patch = patch
        log.info("patch %s loaded", patch.name)
        for listener in self._on_patch:
            listener(patch)

    @staticmethod
    def _patch_by_name(name: str) -> Path:
        if not PATCH_NAME.match(name):
            raise ConfigError(name, None, "", "a patch name only (letters, digits, - and _), never a path")
        return data_dir("patches") / f"{name}.toml"

    def _age(self, e: ControlEvent) -> float:
        """Seconds between the event and the frame it lands on: measured live (0..1 s), read back
        from the recorded value in a replay."""
        if isinstance(e.value, dict) and "age" in e.value:
            return float(e.value["age"])
        return min(max(self._wall - e.time, 0.0), 1.0)

    def _tap(self, e: ControlEvent) -> dict:
        age = self._age(e)
        tempo = self.beat.tap(self._show_time - age)
        if tempo is not None:
            self.bank.set("tempo", tempo, immediate=True)
        return {"age": age}

    def _sync(self, e: ControlEvent) -> dict:
        if not isinstance(e.value, dict):
            raise ValueError(f"{SYNC} takes a report table, not {type(e.value).__name__}")
        report = {**e.value, "age": self._age(e)}
        self.beat.sync(report, self._show_time - report["age"])
        return report

    def _audio(self, e: ControlEvent) -> dict:
        if not isinstance(e.value, dict):
            raise ValueError(f"audio takes a feature table, not {type(e.value).__name__}")
        self.audio = {k: min(max(float(v), 0.0), 1.0) for k, v in e.value.items()
                      if isinstance(v, (int, float))}
        return self.audio

    def _reload_chain(self, e: ControlEvent) -> None:
        self.picture.compositor.load_chain(self.patch.chain)  # a failure is reported, the old chain plays on

    def _tracking_jump(self, e: ControlEvent) -> None:
        """Kick the chain's `tracking_jump` up now and let its smoothing carry it back to rest: the
        decay is the parameter's own (declared in the chain), stepped per frame, so it replays."""
        args = e.value if isinstance(e.value, (tuple, list)) else (e.value,)
        strength = 1.0 if not args or args[0] is None else args[0]
        self.bank.set("tracking_jump", strength, immediate=True)
        self.bank.set("tracking_jump", 0.0)

    @property
    def recording(self) -> bool:
        return bool(self.bank.targets.get("recording", False))

    def _takes_stopped(self) -> bool:
        """Outputs that record are there and none of them has a take running any more."""
        decks = [out for out in self.outputs if is_deck(out)]
        return bool(decks) and not any(out.recording for out in decks)

    def _record(self, on: bool) -> None:
        """Start or stop the takes of every output that records (a re-render has none: it only
        shows REC on the tape's display, as the live show did)."""
        for out in self.outputs:
            if is_deck(out):
                on = out.record(on)
        if "recording" in self.bank.registry:
            self.bank.set("recording", on, immediate=True)
