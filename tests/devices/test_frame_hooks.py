"""Drivers react to frames through ``@reacts_to`` marks, the one list of the frames each reacts to.

Before, a driver named its frame types in ``on_frame_types`` and tested them again with isinstance
in ``on_frame``: a type added to the method but not to the list never reached it, in silence.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from devices.drivers.contec import ContecSource
from devices.drivers.nonin import NoninSource
from devices.parsers.base import Frame
from devices.parsers.contec import (CMD_KEEP_ALIVE, TYPE_DEVICE_ID, TYPE_FEEDBACK, TYPE_MODEL,
                                    ContecFeedback, ContecParser, ContecText, encode_packet)
from devices.parsers.nonin import ACK, NAK
from devices.protocols import PROTOCOLS
from devices.serial_source import ParsedSource, reacts_to
from ketmonitor.sources import source_class


def _realtime(pulse=72, spo2=97) -> bytes:
    return encode_packet(0x01, [0x05, 60, 0x0A, pulse, spo2, 250, 0])


def _text(ptype: int, text: str) -> bytes:
    return encode_packet(ptype, list(text.encode().ljust(7, b"\0")))


class Watcher(ParsedSource):
    """A byte-fed source (no port) that notes the frames its marked methods get."""

    parser_class = ContecParser

    def __init__(self, source_id: str = "watch", **options):
        super().__init__(source_id, **options)
        self.replies: list[Frame] = []
        self.rejections: list[int] = []

    def _run(self, stop: threading.Event) -> None:
        stop.wait()

    @reacts_to(ContecText)
    def _reply(self, frame: ContecText, t_mono: float) -> None:
        self.replies.append(frame)

    @reacts_to(ContecFeedback)
    def _rejected(self, frame: ContecFeedback, t_mono: float) -> None:
        self.rejections.append(frame.command)


def test_marked_methods_get_their_frames_and_no_others():
    src = Watcher()
    assert dict(src.frame_hooks) == {ContecText: "_reply", ContecFeedback: "_rejected"}
    src.handle_read(_realtime() + _text(TYPE_MODEL, "CMS50F") + _realtime()
                    + encode_packet(0x0E, [1])  # PI support: a documented packet, no reaction
                    + encode_packet(TYPE_FEEDBACK, [0xB5, 0x05]) + _text(TYPE_DEVICE_ID, "A1"),
                    10.0, 1.8e9)
    assert [(f.kind, f.text) for f in src.replies] == [("model", "CMS50F"), ("device id", "A1")]
    assert src.rejections == [0xB5]
    assert src.parser.frames == 6  # every frame decoded; two realtime and PI support unhandled


def test_a_subclass_of_a_marked_frame_type_reaches_the_same_method():
    @dataclass(frozen=True, slots=True)
    class SerialNumber(ContecText):  # a frame type a later parser might add
        pass

    src = Watcher()
    frame = SerialNumber(TYPE_DEVICE_ID, "SN-1")
    src.handle_frames([frame], 1.0, 1.8e9)
    assert src.replies == [frame]


def test_a_subclass_mark_replaces_its_base_and_keeps_the_rest():
    class Quiet(Watcher):
        @reacts_to(ContecText)
        def _ignore_text(self, frame: ContecText, t_mono: float) -> None:
            self.ignored = frame

    src = Quiet()
    assert dict(Quiet.frame_hooks) == {ContecText: "_ignore_text", ContecFeedback: "_rejected"}
    src.handle_read(_text(TYPE_MODEL, "X") + encode_packet(TYPE_FEEDBACK, [0xB6, 5]), 1.0, 1.8e9)
    assert src.replies == [] and src.ignored.text == "X" and src.rejections == [0xB6]


@pytest.mark.parametrize("old", ["on_frame", "on_frame_types", "frame_hooks"])
def test_a_hand_written_hook_list_or_catch_all_is_refused_when_the_class_is_made(old):
    # any of these would be read by nothing: refused loudly rather than ignored in silence
    with pytest.raises(TypeError, match=rf"Late\.{old}: mark .* @reacts_to"):
        type("Late", (Watcher,), {old: lambda self, frame, t_mono: None})


def test_two_methods_of_one_class_cannot_react_to_one_frame_type():
    with pytest.raises(TypeError, match="both _a and _b react to ContecText"):
        class Twice(Watcher):
            @reacts_to(ContecText)
            def _a(self, frame, t_mono):
                pass

            @reacts_to(ContecText, ContecFeedback)
            def _b(self, frame, t_mono):
                pass


@pytest.mark.parametrize("bad", [(), (int,), (ContecText, "ContecFeedback")])
def test_reacts_to_takes_frame_classes_only(bad):
    with pytest.raises(TypeError, match="reacts_to takes Frame classes"):
        reacts_to(*bad)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_driver_reacts_only_to_frames_of_its_own_parser(name):
    # a mark naming another protocol's frame (or a frame no parser makes) would never fire
    proto = PROTOCOLS[name]
    driver = source_class(proto.source)
    parser_module = proto.parser.partition(":")[0]
    for frame_type, method in driver.frame_hooks.items():
        assert frame_type.__module__ == parser_module, (name, frame_type)
        assert callable(getattr(driver, method)), (name, method)


def test_the_drivers_reactions():
    assert dict(ContecSource.frame_hooks) == {ContecText: "_device_text",
                                              ContecFeedback: "_rejected"}
    contec = ContecSource("c", port="loop://")
    contec.handle_read(_realtime() + _text(TYPE_MODEL, "CMS50F")
                       + encode_packet(TYPE_FEEDBACK, [CMD_KEEP_ALIVE, 0x05]), 1.0, 1.8e9)
    assert contec.device_info == {"model": "CMS50F"} and contec.rejected_commands == [0xAF]

    for byte, reply in ((ACK, "ack"), (NAK, "nak")):
        nonin = NoninSource("n", port="loop://", format=8)
        nonin.parser.expect_reply()
        record = bytes((0x80, 72, 97, 0x00))  # a #8 record after the answer proves it stands alone
        nonin.handle_read(bytes((byte,)) + record, 1.0, 1.8e9)
        assert nonin.format_reply == reply
        assert ("refused format #8" in nonin.no_data_hint) == (reply == "nak")
