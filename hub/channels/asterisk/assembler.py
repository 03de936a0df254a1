"""From AMI events to calls: joins the channels of one call by `Linkedid` and
says, event by event, what became known about it (`CallUpdate`s).

Asterisk reports a call as several channels — the customer's trunk channel,
each extension it rings, Local channels of a queue — all sharing the
`Linkedid` of the first. The assembler follows them:

- `Newchannel` of a trunk (not an extension): an inbound call, ringing;
- `DialBegin` from an extension to a number: an outbound call;
- `DialEnd` ANSWER / `BridgeEnter` of the customer with an extension: answered
  by that extension (a later, different extension bridged with the customer,
  or a successful `BlindTransfer`, is a transfer);
- `Newexten` into `VoiceMail`: the caller is leaving a message;
- the last `Hangup`: the end (talk time from answer to hang-up), or a missed call;
- `Cdr`: the PBX's own summary; it completes calls whose end the hub did not
  see (events lost while the AMI connection was down) and calls it never saw.

After a reconnect, `reconnected(live)` is told which channels are still up:
calls with none left ended while the hub was away. They wait `cdr_grace` for
their `Cdr`, then `expire` closes them as "unknown end". Nothing the PBX
reported is dropped. Pure: time comes in as arguments.

Events without a Linkedid, and calls between two extensions, are ignored.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.channels.asterisk.protocol import AmiMessage
from hub.inbox.calls import AgentRef, CallDirection, CallUpdate, EndReason

# Q.850 hang-up causes that say why nobody talked.
CAUSES: dict[str, tuple[EndReason, str]] = {
    "17": ("busy", "busy"),
    "18": ("no-answer", "no answer"),
    "19": ("no-answer", "no answer"),
    "21": ("failed", "call rejected"),
    "34": ("failed", "no line available"),
}
REMEMBERED_CHANNELS = 20_000


@dataclass(frozen=True)
class Emit:
    """An update for the inbox, with the customer's number as the PBX gave it."""

    update: CallUpdate
    customer: str


@dataclass
class _Leg:
    name: str
    extension: str | None
    number: str


@dataclass
class _Call:
    linkedid: str
    legs: dict[str, _Leg] = field(default_factory=dict)  # uniqueid → leg
    direction: CallDirection | None = None
    internal: bool = False
    customer: str = ""
    customer_leg: str | None = None
    agent_leg: str | None = None  # outbound: the extension that called
    line: str = ""
    answered_ext: str | None = None
    answered_at: datetime | None = None
    bridges: dict[str, set[str]] = field(default_factory=dict)
    voicemail_box: str | None = None
    ended: bool = False
    orphaned_at: datetime | None = None


class CallAssembler:
    def __init__(
        self,
        *,
        extension_pattern: str = r"^\d{2,6}$",
        timezone: str = "Asia/Ho_Chi_Minh",
        cdr_grace: timedelta = timedelta(seconds=10),
        recording_url: str | None = None,
    ) -> None:
        self.extension = re.compile(extension_pattern)
        self.zone = ZoneInfo(timezone)
        self.cdr_grace = cdr_grace
        self.recording_url = recording_url  # "https://pbx/vm/{mailbox}/{call_id}"
        self.calls: dict[str, _Call] = {}
        # uniqueid → linkedid of every channel seen lately (calls long over
        # included), so a Cdr — or a replayed one — is matched to its call.
        self._owner: OrderedDict[str, str] = OrderedDict()
        self.ignored = 0

    def _remember(self, uniqueid: str, linkedid: str) -> None:
        self._owner[uniqueid] = linkedid
        self._owner.move_to_end(uniqueid)
        while len(self._owner) > REMEMBERED_CHANNELS:
            self._owner.popitem(last=False)

    # -- classification ----------------------------------------------------
    def extension_of(self, channel: str) -> str | None:
        """ "PJSIP/101-0000001a" → "101" when 101 is an extension; None for trunks
        and Local channels."""
        tech, _, rest = channel.partition("/")
        if not rest or tech.lower() == "local":
            return None
        peer = rest.rsplit("-", 1)[0] if "-" in rest else rest
        return peer if self.extension.match(peer) else None

    def is_external(self, channel: str) -> bool:
        tech = channel.partition("/")[0].lower()
        return tech != "local" and self.extension_of(channel) is None

    @staticmethod
    def dialled_number(dial_string: str) -> str:
        """ "trunk-vnpt/0901234567" or "0901234567@trunk" → "0901234567"."""
        target = dial_string.rsplit("/", 1)[-1].split("@", 1)[0]
        return target.strip()

    def moment(self, message: AmiMessage, now: datetime) -> datetime:
        stamp = message.get("Timestamp")
        if stamp:
            try:
                return datetime.fromtimestamp(float(stamp), UTC)
            except (ValueError, OverflowError):
                pass
        return now

    # -- events ------------------------------------------------------------
    def feed(self, message: AmiMessage, now: datetime) -> list[Emit]:
        """What `message` makes known, as updates to emit (often none)."""
        event = message.event or ""
        at = self.moment(message, now)
        if event == "Cdr":
            return self._cdr(message, now)
        linkedid = message.get("Linkedid") or message.get("TransfereeLinkedid") or ""
        handler = {
            "Newchannel": self._new_channel,
            "DialBegin": self._dial_begin,
            "DialEnd": self._dial_end,
            "BridgeEnter": self._bridge_enter,
            "BridgeLeave": self._bridge_leave,
            "BlindTransfer": self._blind_transfer,
            "Newexten": self._new_exten,
            "Hangup": self._hangup,
        }.get(event)
        if handler is None:
            return []
        if not linkedid or (event != "Newchannel" and linkedid not in self.calls):
            self.ignored += 1
            return []
        if event == "Newchannel":
            self.calls.setdefault(linkedid, _Call(linkedid))
        call = self.calls[linkedid]
        emitted = handler(call, message, at)
        if call.internal:
            return []
        return emitted

    def _emit(self, call: _Call, at: datetime, **facts: object) -> list[Emit]:
        if call.direction is None or call.internal:
            return []
        update = CallUpdate(
            call_id=call.linkedid, direction=call.direction, at=at, line=call.line, **facts
        )
        return [Emit(update, call.customer)]

    def _new_channel(self, call: _Call, message: AmiMessage, at: datetime) -> list[Emit]:
        uniqueid = message.get("Uniqueid", "")
        name = message.get("Channel", "")
        if not uniqueid or not name:
            self.ignored += 1
            return []
        leg = _Leg(name, self.extension_of(name), message.get("CallerIDNum", ""))
        call.legs[uniqueid] = leg
        self._remember(uniqueid, call.linkedid)
        if call.direction is None and uniqueid == call.linkedid and self.is_external(name):
            call.direction = "inbound"
            call.customer = leg.number
            call.customer_leg = uniqueid
            call.line = message.get("Exten", "")
            return self._emit(call, at)
        return []

    def _dial_begin(self, call: _Call, message: AmiMessage, at: datetime) -> list[Emit]:
        dest = message.get("DestUniqueid", "")
        dest_name = message.get("DestChannel", "")
        if dest and dest_name and dest not in call.legs:
            call.legs[dest] = _Leg(
                dest_name, self.extension_of(dest_name), message.get("DestCallerIDNum", "")
            )
            self._remember(dest, call.linkedid)
        if call.direction is not None:
            return []
        caller = message.get("Channel", "")
        if self.extension_of(caller) is None:
            return []
        if dest_name and not self.is_external(dest_name):
            call.internal = True  # extension to extension: not a customer call
            return []
        number = self.dialled_number(message.get("DialString", "")) or message.get("DestExten", "")
        if not number:
            return []
        call.direction = "outbound"
        call.customer = number
        call.customer_leg = dest or None
        call.agent_leg = message.get("Uniqueid") or None
        call.line = self.extension_of(caller) or ""
        return self._emit(call, at)

    def _answered(self, call: _Call, extension: str | None, at: datetime) -> list[Emit]:
        if extension is None:
            return []
        if call.answered_ext is None:
            call.answered_ext = extension
            call.answered_at = at
            return self._emit(call, at, answered_by=AgentRef(extension=extension))
        if extension != call.answered_ext:
            call.answered_ext = extension
            return self._emit(call, at, transferred_to=AgentRef(extension=extension))
        return []

    def _dial_end(self, call: _Call, message: AmiMessage, at: datetime) -> list[Emit]:
        if message.get("DialStatus", "").upper() != "ANSWER":
            return []
        if call.direction == "inbound":
            return self._answered(call, self.extension_of(message.get("DestChannel", "")), at)
        if call.direction == "outbound":
            return self._answered(call, self.extension_of(message.get("Channel", "")), at)
        return []

    def _bridge_enter(self, call: _Call, message: AmiMessage, at: datetime) -> list[Emit]:
        bridge = message.get("BridgeUniqueid", "")
        uniqueid = message.get("Uniqueid", "")
        if not bridge or not uniqueid:
            return []
        members = call.bridges.setdefault(bridge, set())
        members.add(uniqueid)
        if call.customer_leg not in members:
            return []
        for member in members:
            leg = call.legs.get(member)
            if leg is not None and leg.extension is not None:
                if member == uniqueid or call.answered_ext is None:
                    return self._answered(call, leg.extension, at)
        return []

    def _bridge_leave(self, call: _Call, message: AmiMessage, at: datetime) -> list[Emit]:
        call.bridges.get(message.get("BridgeUniqueid", ""), set()).discard(
            message.get("Uniqueid", "")
        )
        return []

    def _blind_transfer(self, call: _Call, message: AmiMessage, at: datetime) -> list[Emit]:
        target = message.get("Extension", "")
        if message.get("Result", "").lower() != "success" or not self.extension.match(target):
            return []
        return self._answered(call, target, at) if call.answered_ext else []

    def _new_exten(self, call: _Call, message: AmiMessage, at: datetime) -> list[Emit]:
        if message.get("Application", "").lower() != "voicemail" or call.voicemail_box:
            return []
        call.voicemail_box = message.get("AppData", "").split(",", 1)[0] or "default"
        if call.direction != "inbound" or call.answered_ext is not None:
            return []
        return self._emit(call, at, missed=True, miss_reason="no answer")

    def _hangup(self, call: _Call, message: AmiMessage, at: datetime) -> list[Emit]:
        call.legs.pop(message.get("Uniqueid", ""), None)
        if call.legs or call.ended:
            return []
        call.ended = True
        self.calls.pop(call.linkedid, None)
        return self._end(call, at, message.get("Cause", ""))

    def _end(self, call: _Call, at: datetime, cause: str) -> list[Emit]:
        if call.answered_at is not None:
            talk = max(0, int((at - call.answered_at).total_seconds()))
            return self._emit(call, at, ended=True, end_reason="completed", duration_seconds=talk)
        reason, words = CAUSES.get(cause, ("no-answer" if cause != "16" else "canceled", ""))
        facts: dict[str, object] = {"ended": True, "end_reason": reason}
        if call.direction == "inbound" or call.direction == "outbound":
            facts.update(missed=True, miss_reason=words or "no answer")
        if call.voicemail_box and call.direction == "inbound":
            facts["miss_reason"] = "no answer"
            facts["voicemail"] = True
            facts["recording_url"] = self._recording(call)
        return self._emit(call, at, **facts)

    def _recording(self, call: _Call) -> str | None:
        if not self.recording_url:
            return None
        return self.recording_url.format(mailbox=call.voicemail_box, call_id=call.linkedid)

    # -- Cdr -----------------------------------------------------------------
    def _cdr_time(self, value: str) -> datetime | None:
        try:
            return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=self.zone)
        except ValueError:
            return None

    def _cdr(self, message: AmiMessage, now: datetime) -> list[Emit]:
        """The PBX's summary of a call: enough to record it whole, whatever the
        hub saw of it before."""
        uniqueid = message.get("UniqueID", "")
        if not uniqueid:
            self.ignored += 1
            return []
        linkedid = self._owner.get(uniqueid, uniqueid)
        orphan = self.calls.pop(linkedid, None)
        source_channel = message.get("Channel", "")
        dest_channel = message.get("DestinationChannel", "")
        source, destination = message.get("Source", ""), message.get("Destination", "")
        if self.is_external(source_channel):
            direction: CallDirection = "inbound"
            customer, agent_ext, line = source, self.extension_of(dest_channel), destination
        elif self.extension_of(source_channel) and not self.extension.match(destination):
            direction, customer = "outbound", destination
            agent_ext = self.extension_of(source_channel)
            line = agent_ext or ""
        else:
            return []  # extension to extension
        if orphan is not None and orphan.customer:
            customer = orphan.customer
        # The VoiceMail app answers the channel, so Asterisk calls a voicemail
        # "ANSWERED"; nobody talked to the caller.
        to_voicemail = message.get("LastApplication", "").lower() == "voicemail" or bool(
            orphan and orphan.voicemail_box
        )
        answered = message.get("Disposition", "").upper() == "ANSWERED" and not to_voicemail
        ended_at = self._cdr_time(message.get("EndTime", "")) or now
        started_at = self._cdr_time(message.get("StartTime", "")) or ended_at
        answered_at = self._cdr_time(message.get("AnswerTime", "")) or started_at
        billed = message.get("BillableSeconds", "")
        facts: dict[str, object] = {"ended": True}
        if answered:
            facts["end_reason"] = "completed"
            facts["duration_seconds"] = (
                int(billed) if billed.isascii() and billed.isdigit() else None
            )
        else:
            disposition = message.get("Disposition", "").upper()
            facts["end_reason"] = "busy" if disposition == "BUSY" else "no-answer"
            facts["missed"] = True
            facts["miss_reason"] = "busy" if disposition == "BUSY" else "no answer"
            if to_voicemail and direction == "inbound":
                facts["voicemail"] = True
                box = orphan.voicemail_box if orphan and orphan.voicemail_box else None
                box = box or message.get("LastData", "").split(",", 1)[0] or "default"
                if self.recording_url:
                    facts["recording_url"] = self.recording_url.format(
                        mailbox=box, call_id=linkedid
                    )
        # A call the hub saw has its start already, to the millisecond; the Cdr's
        # start (to the second) is only for calls it never saw.
        seen = uniqueid in self._owner
        emits: list[Emit] = []
        if not seen:
            start = CallUpdate(call_id=linkedid, direction=direction, at=started_at, line=line)
            emits.append(Emit(start, customer))
        if answered and agent_ext:
            emits.append(
                Emit(
                    CallUpdate(
                        call_id=linkedid,
                        direction=direction,
                        at=answered_at,
                        answered_by=AgentRef(extension=agent_ext),
                    ),
                    customer,
                )
            )
        emits.append(
            Emit(CallUpdate(call_id=linkedid, direction=direction, at=ended_at, **facts), customer)
        )
        return emits

    # -- reconnects ------------------------------------------------------------
    def reconnected(self, live_channels: set[str], now: datetime) -> None:
        """After a reconnect: forget channels that are gone; calls left with none
        ended while the hub was away and now wait for their Cdr."""
        for call in list(self.calls.values()):
            for uniqueid in [u for u in call.legs if u not in live_channels]:
                del call.legs[uniqueid]
            if not call.legs and call.orphaned_at is None:
                call.orphaned_at = now

    def expire(self, now: datetime) -> list[Emit]:
        """Close calls whose Cdr did not come within the grace period: the end is
        unknown, but the call is on the timeline with everything seen of it."""
        emitted: list[Emit] = []
        for call in list(self.calls.values()):
            if call.orphaned_at is None or now - call.orphaned_at < self.cdr_grace:
                continue
            del self.calls[call.linkedid]
            facts: dict[str, object] = {"ended": True, "end_reason": "unknown"}
            if call.answered_at is None:
                facts["missed"] = True
            emitted += self._emit(call, call.orphaned_at, **facts)
        return emitted
