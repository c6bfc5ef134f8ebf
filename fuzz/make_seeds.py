#!/usr/bin/python3
"""Writes the seed corpus for frame_fuzz: one valid frame of each client
type plus a few broken ones. Run with Debian's python3 (python3-flatbuffers)
after a build: make_seeds.py <build>/generated/python <out-dir>."""
import os
import sys

sys.path.insert(0, sys.argv[1])
import flatbuffers  # noqa: E402
from chatcore.wire import (Body, Frame, Heartbeat, History, MarkRead,  # noqa: E402
                           PresenceQuery, Send, Sync)

out = sys.argv[2]
os.makedirs(out, exist_ok=True)


def frame(name, body_type, build_body):
    b = flatbuffers.Builder(256)
    body = build_body(b)
    Frame.Start(b)
    Frame.AddRequestId(b, 7)
    Frame.AddBodyType(b, body_type)
    Frame.AddBody(b, body)
    b.Finish(Frame.End(b))
    data = bytes(b.Output())
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    return data


def send(b, conv=0, peer=2, body=b"hello", cid=bytes(range(1, 17))):
    text = b.CreateString(body)
    ids = b.CreateByteVector(cid)
    Send.Start(b)
    Send.AddConversationId(b, conv)
    Send.AddPeerUserId(b, peer)
    Send.AddClientMsgId(b, ids)
    Send.AddBody(b, text)
    return Send.End(b)


def history(b):
    History.Start(b)
    History.AddConversationId(b, (1 << 31) | 2)
    History.AddLimit(b, 10)
    return History.End(b)


def sync(b):
    Sync.Start(b)
    Sync.AddAfterInboxSeq(b, 0)
    Sync.AddLimit(b, 5)
    return Sync.End(b)


def heartbeat(b):
    Heartbeat.Start(b)
    return Heartbeat.End(b)


def presence(b):
    PresenceQuery.StartUserIdsVector(b, 2)
    b.PrependUint64(2)
    b.PrependUint64(1)
    ids = b.EndVector()
    PresenceQuery.Start(b)
    PresenceQuery.AddUserIds(b, ids)
    PresenceQuery.AddGroupId(b, 1)
    return PresenceQuery.End(b)


def mark_read(b):
    MarkRead.Start(b)
    MarkRead.AddConversationId(b, (1 << 31) | 2)
    MarkRead.AddSeq(b, 1)
    return MarkRead.End(b)


good = frame("send", Body.Body.Send, send)
frame("send_group", Body.Body.Send, lambda b: send(b, conv=(1 << 62) | 1, peer=0))
frame("send_bad_utf8", Body.Body.Send, lambda b: send(b, body=b"\xc3("))
frame("history", Body.Body.History, history)
frame("sync", Body.Body.Sync, sync)
frame("heartbeat", Body.Body.Heartbeat, heartbeat)
frame("presence", Body.Body.PresenceQuery, presence)
frame("mark_read", Body.Body.MarkRead, mark_read)
with open(os.path.join(out, "truncated"), "wb") as f:
    f.write(good[: len(good) // 2])
with open(os.path.join(out, "empty"), "wb") as f:
    f.write(b"")
