#!/usr/bin/env python3
"""Classifies python-kasa's recorded devices for the sweep (stdlib only).

For each fixture prints one tab-separated line:
    path  kind  protocol  outlets  family  model
kind:     plug | strip | switch | norelay | skip
protocol: legacy | klap | aes   (from the recording's discovery result)
outlets:  children addressed one by one (strips, multi-gang switches), else 0
family:   the device type (IOT.SMARTPLUGSWITCH, SMART.TAPOPLUG, ...)

The expectation is read from the recording itself, independently of the
simulator: a relay is a legacy `relay_state` or `children[].state`, a SMART
`device_on` (of the device, or of its children for strips and multi-gang
switches); bulbs and light strips (whose `device_on` is a light), hubs,
sensors, vacuums and chimes have none.
"""
import json
import os
import sys

WALL = ("HS2", "KS2", "ES2", "S5", "TS1")  # wall switches and dimmers


def classify(path):
    name = os.path.splitext(os.path.basename(path))[0]
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    disc = data.get("discovery_result") or {}
    disc = disc.get("result", disc)
    enc = ((disc.get("mgt_encrypt_schm") or {}).get("encrypt_type") or "").upper()
    protocol = {"KLAP": "klap", "AES": "aes"}.get(enc, "legacy")
    if "system" in data:
        si = data["system"]["get_sysinfo"]
        family = si.get("mic_type") or si.get("type") or "IOT"
        model = si.get("model", name)
        children = si.get("children") or []
        if "BULB" in family.upper() or ("relay_state" not in si and not children):
            return name, "norelay", protocol, 0, family, model
        if children:
            return name, "strip", protocol, len(children), family, model
        kind = "switch" if model.startswith(WALL) else "plug"
        return name, kind, protocol, 0, family, model
    info = data.get("get_device_info")
    if not isinstance(info, dict) or "component_nego" not in data:
        return name, "skip", protocol, 0, "?", name
    family = info.get("type") or disc.get("device_type") or "SMART"
    model = disc.get("device_model") or info.get("model", name)
    children = (data.get("get_child_device_list") or {}).get("child_device_list") or []
    if "BULB" in family.upper():
        return name, "norelay", protocol, 0, family, model
    if "device_on" in info:
        kind = "switch" if "SWITCH" in family.upper() else "plug"
        return name, kind, protocol, 0, family, model
    if any("device_on" in c for c in children):
        # A multi-gang wall switch (KS240) is addressed like a strip.
        kind = "switch" if "SWITCH" in family.upper() else "strip"
        return name, kind, protocol, len(children), family, model
    return name, "norelay", protocol, 0, family, model


def main():
    for path in sys.argv[1:]:
        try:
            row = classify(path)
        except (OSError, ValueError, KeyError) as e:
            print(f"classify: {path}: {e}", file=sys.stderr)
            row = (os.path.basename(path), "skip", "-", 0, "?", "?")
        print("\t".join([path] + [str(x) for x in row[1:]]))


if __name__ == "__main__":
    main()
