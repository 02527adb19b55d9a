"""Interop driver for pysrs 1.0.4 (Debian python3-srs, import name `SRS`), Guarded scheme.

Same line protocol as mail-srs.pl: one JSON request per line on stdin, one JSON answer per line
on stdout, in order. Run it with /usr/bin/python3 (the Debian package installs only there) and
never with -O: pysrs reports a bad hash or stamp with `assert`, which -O would strip.
"""
import json
import sys
import time

from SRS.Guarded import Guarded

# SRS/Base.py reads the clock as time.time() in timestamp_create and timestamp_check, so
# replacing the module attribute pins the day stamp for every call.
NOW = 0.0
time.time = lambda: NOW

_srs_by_options = {}


def srs_for(req):
    key = (tuple(req["secret"]), req["separator"], req["hashLength"], req["hashMin"])
    srs = _srs_by_options.get(key)
    if srs is None:
        srs = Guarded(secret=req["secret"][0], hashlength=req["hashLength"],
                      hashmin=req["hashMin"], separator=req["separator"], maxage=21)
        # set_secret(new, old, ...): the first signs, all of them verify.
        srs.set_secret(*req["secret"])
        _srs_by_options[key] = srs
    return srs


def answer(req):
    global NOW
    NOW = req["now"]
    srs = srs_for(req)
    if req["op"] == "forward":
        return srs.forward(req["address"], req["alias"])
    if req["op"] == "reverse":
        return srs.reverse(req["address"])
    raise ValueError("unknown op %s" % req["op"])


def main():
    # The wire is UTF-8 both ways. pysrs encodes each field with str.encode() (UTF-8) before
    # hashing and lowercases the bytes with bytes.lower(), which folds ASCII only, so decoding
    # the line as UTF-8 hashes exactly the bytes Mail::SRS hashes.
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        try:
            reply = {"ok": True, "result": answer(json.loads(line))}
        except Exception as error:  # AssertionError and ValueError are pysrs's rejections
            reply = {"ok": False, "error": "%s: %s" % (type(error).__name__, error)}
        out.write(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()


main()
