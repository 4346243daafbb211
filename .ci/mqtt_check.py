#!/usr/bin/env python3
"""Checks the Home Assistant discovery messages that .ci/mqtt.sh collected
with `mosquitto_sub -v` (one "topic payload" line each) against Home
Assistant's documented MQTT discovery keys (MQTT climate, sensor and
binary_sensor pages, as of HA 2025.x), and against what issue 20 asks for.

usage: mqtt_check.py FILE DISCOVERY_PREFIX NODE_ID STATE_PREFIX UNITS
"""
import json
import sys

# Keys every MQTT entity may have (the entity, device and availability blocks).
COMMON = {
    "name", "unique_id", "object_id", "default_entity_id", "device", "availability",
    "availability_topic", "availability_mode", "availability_template",
    "payload_available", "payload_not_available", "qos", "encoding", "icon",
    "entity_category", "entity_picture", "enabled_by_default",
    "json_attributes_topic", "json_attributes_template", "platform", "origin",
}
# https://www.home-assistant.io/integrations/climate.mqtt/ (configuration variables).
CLIMATE = COMMON | {
    "action_template", "action_topic", "current_humidity_template",
    "current_humidity_topic", "current_temperature_template",
    "current_temperature_topic", "fan_mode_command_template",
    "fan_mode_command_topic", "fan_mode_state_template", "fan_mode_state_topic",
    "fan_modes", "initial", "max_humidity", "max_temp", "min_humidity", "min_temp",
    "mode_command_template", "mode_command_topic", "mode_state_template",
    "mode_state_topic", "modes", "optimistic", "payload_off", "payload_on",
    "power_command_template", "power_command_topic", "precision",
    "preset_mode_command_template", "preset_mode_command_topic",
    "preset_mode_state_topic", "preset_mode_value_template", "preset_modes",
    "retain", "swing_horizontal_mode_command_template",
    "swing_horizontal_mode_command_topic", "swing_horizontal_mode_state_template",
    "swing_horizontal_mode_state_topic", "swing_horizontal_modes",
    "swing_mode_command_template", "swing_mode_command_topic",
    "swing_mode_state_template", "swing_mode_state_topic", "swing_modes",
    "target_humidity_command_template", "target_humidity_command_topic",
    "target_humidity_state_template", "target_humidity_state_topic",
    "temperature_command_template", "temperature_command_topic",
    "temperature_high_command_template", "temperature_high_command_topic",
    "temperature_high_state_template", "temperature_high_state_topic",
    "temperature_low_command_template", "temperature_low_command_topic",
    "temperature_low_state_template", "temperature_low_state_topic",
    "temperature_state_template", "temperature_state_topic", "temperature_unit",
    "temp_step", "value_template",
}
SENSOR = COMMON | {
    "state_topic", "value_template", "device_class", "state_class",
    "unit_of_measurement", "suggested_display_precision", "options",
    "expire_after", "force_update", "last_reset_value_template",
}
BINARY_SENSOR = COMMON | {
    "state_topic", "value_template", "device_class", "payload_on", "payload_off",
    "expire_after", "force_update", "off_delay",
}
ALLOWED = {"climate": CLIMATE, "sensor": SENSOR, "binary_sensor": BINARY_SENSOR}
HA_MODES = {"auto", "off", "cool", "heat", "dry", "fan_only", "heat_cool"}


def fail(msg):
    print(f"mqtt_check: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    path, dprefix, node, prefix, units = sys.argv[1:6]
    configs = {}
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            continue
        topic, _, payload = line.partition(" ")
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != dprefix or parts[4] != "config" or parts[2] != node:
            fail(f"unexpected discovery topic {topic}")
        try:
            configs[(parts[1], parts[3])] = json.loads(payload)
        except json.JSONDecodeError as e:
            fail(f"{topic}: not JSON ({e})")
    if ("climate", "thermostat") not in configs:
        fail(f"no climate entity under {dprefix}/climate/{node}/thermostat/config")
    ids = set()
    for (component, obj), c in configs.items():
        where = f"{component}/{obj}"
        unknown = set(c) - ALLOWED[component]
        if unknown:
            fail(f"{where}: keys Home Assistant does not document: {sorted(unknown)}")
        for key in ("unique_id", "device", "availability_topic", "name"):
            if key not in c:
                fail(f"{where}: no {key}")
        if c["unique_id"] in ids:
            fail(f"{where}: unique_id {c['unique_id']} repeats")
        ids.add(c["unique_id"])
        dev = c["device"]
        for key in ("name", "model", "sw_version", "identifiers"):
            if not dev.get(key):
                fail(f"{where}: device block has no {key}")
        if c["availability_topic"] != f"{prefix}/availability":
            fail(f"{where}: availability_topic {c['availability_topic']}")
        if component != "climate" and c.get("state_topic") != f"{prefix}/state":
            fail(f"{where}: state_topic {c.get('state_topic')}")
    c = configs[("climate", "thermostat")]
    need = {
        "mode_command_topic": f"{prefix}/set/mode",
        "mode_state_topic": f"{prefix}/state",
        "current_temperature_topic": f"{prefix}/state",
        "temperature_command_topic": f"{prefix}/set/target",
        "temperature_low_command_topic": f"{prefix}/set/low",
        "temperature_high_command_topic": f"{prefix}/set/high",
        "temperature_low_state_topic": f"{prefix}/state",
        "temperature_high_state_topic": f"{prefix}/state",
        "action_topic": f"{prefix}/state",
        "temperature_unit": units,
        "precision": 0.1,
    }
    for key, want in need.items():
        if c.get(key) != want:
            fail(f"climate: {key} is {c.get(key)!r}, want {want!r}")
    for key in ("mode_state_template", "current_temperature_template",
                "temperature_low_state_template", "temperature_high_state_template",
                "temperature_state_template", "action_template"):
        if "value_json." not in c.get(key, ""):
            fail(f"climate: {key} is {c.get(key)!r}")
    if not set(c["modes"]) <= HA_MODES or "off" not in c["modes"]:
        fail(f"climate: modes {c['modes']}")
    if not (isinstance(c["min_temp"], (int, float)) and c["min_temp"] < c["max_temp"]):
        fail(f"climate: min_temp {c['min_temp']} max_temp {c['max_temp']}")
    roles = {obj[: -len("_state")] for (comp, obj) in configs if comp == "sensor" and obj.endswith("_state")}
    for role in roles:
        if ("binary_sensor", f"{role}_deadman") not in configs:
            fail(f"no dead-man entity for the {role} plug")
        opts = configs[("sensor", f"{role}_state")].get("options")
        if opts != ["on", "off", "unknown"]:
            fail(f"{role}_state options {opts}")
    if ("sensor", "temperature") not in configs:
        fail("no temperature sensor")
    print(f"mqtt_check: {len(configs)} discovery configs, modes {c['modes']}, plugs {sorted(roles)}: ok")


main()
