#!/usr/bin/env python3
# Baseline (a) of `npm run bench`: the original suite's way of handling one S
# message, reduced to its file work. smsProcess.py started for the message,
# read the morx file with configparser (smsTools.getMessageContents), and ran
# smsq, which wrote the sms/mttx file (a dot-file renamed in) and the call
# file (written aside, then moved into outgoing/); then the morx file was
# removed. Here that is one process (the original started two: python3 and
# smsq), with no database lookup (the original queried MySQL for the
# recipient), so it is a generous baseline.
#
#   process-one.py MORX_FILE MTTX_DIR TMP_DIR OUTGOING_DIR FSYNC(0|1)
import configparser
import os
import sys


def write(path, data, fsync):
    with open(path, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())


def main():
    morx_file, mttx_dir, tmp_dir, outgoing_dir, fsync = sys.argv[1:6]
    fsync = fsync == "1"
    # allow_no_value: a part of a long message has a `udh#HEX` line, which the original's
    # plain ConfigParser refused (it left such files in morx); here they are handled too.
    parser = configparser.ConfigParser(interpolation=None, allow_no_value=True, strict=False)
    with open(morx_file, "r", encoding="utf-8", errors="replace") as f:
        parser.read_string("[SMS]\n" + f.read())
    sms = parser["SMS"]
    queue = sms.get("da", "0")
    name = queue + "." + os.path.basename(morx_file).split(".", 1)[1]
    lines = ["oa=" + sms.get("oa", ""), "ud=" + sms.get("ud", "")]
    udh = [k for k in sms if k.startswith("udh#")]
    if udh:
        lines.insert(1, udh[0])
    if "scts" in sms:
        lines.append("scts=" + sms["scts"])
    mttx = ("\n".join(lines) + "\n").encode("utf-8")
    write(os.path.join(mttx_dir, "." + name), mttx, fsync)
    os.rename(os.path.join(mttx_dir, "." + name), os.path.join(mttx_dir, name))
    call = (
        "Channel: Local/%s@phones\nCallerID: SMS <1001>\nMaxRetries: 3\nRetryTime: 60\nWaitTime: 30\n"
        "Application: SMS\nData: %s,s\n" % (queue, queue)
    ).encode("ascii")
    staged = os.path.join(tmp_dir, "smsq.mttx." + queue)
    write(staged, call, fsync)
    os.rename(staged, os.path.join(outgoing_dir, "smsq.mttx." + queue))
    os.unlink(morx_file)


if __name__ == "__main__":
    main()
