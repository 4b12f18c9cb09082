"""The `tago` 3.x Python library, unchanged, against the local emulator.

Run by Tests/CLITests (EmulatorSDKTests) with TAGOIO_API pointing at an emulator started with
--device-token and --profile-token; prints one line per check and exits non-zero on the first
failure.
"""
import os
import sys

import tago

device_token = os.environ["EMULATOR_DEVICE_TOKEN"]
profile_token = os.environ["EMULATOR_PROFILE_TOKEN"]
failures = 0


def check(name, cond, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else " :: " + str(detail)))
    if not cond:
        failures += 1


device = tago.Device(device_token)
info = device.info()
check("device.info", info.get("status") is True and "id" in info["result"], info)

r = device.insert([{"variable": "temperature", "value": 21.5, "unit": "C"},
                   {"variable": "temperature", "value": 22.5, "unit": "C", "time": "2026-01-01T00:00:00Z"},
                   {"variable": "humidity", "value": 40}])
check("device.insert", r.get("status") is True and r["result"] == "3 Data Added", r)

bad = device.insert({"variable": "bad name", "value": 1})
check("device.insert rejects a bad variable", bad.get("status") is False and "bad name" in bad.get("message", ""), bad)

found = device.find({"variable": "temperature", "qty": 10})
check("device.find", found.get("status") is True and len(found["result"]) == 2 and found["result"][0]["value"] == 21.5, found)

last = device.find({"variable": "temperature", "query": "last_item"})
check("device.find last_item", last["result"][0]["value"] == 21.5, last)

count = device.find({"variable": "temperature", "query": "count"})
check("device.find count", count["result"] == 2, count)

removed = device.remove({"variable": "humidity", "qty": 10})
check("device.remove", removed.get("status") is True and removed["result"] == "1 Data Removed", removed)

account = tago.Account(profile_token)
created = account.devices.create({"name": "gw-python-1", "type": "mutable", "tags": [{"key": "serial", "value": "PY1"}],
                                  "configuration_params": [{"key": "interval", "value": "30s", "sent": False}]})
check("account.devices.create", created.get("status") is True and "device_id" in created["result"] and "token" in created["result"], created)
new_id = created["result"]["device_id"]
new_token = created["result"]["token"]

listed = account.devices.list(1, ["id", "name", "tags"], {"tags": [{"key": "serial", "value": "PY1"}]}, 20)
check("account.devices.list with a tag filter", listed.get("status") is True and [d["id"] for d in listed["result"]] == [new_id], listed)

by_name = account.devices.list(1, ["id", "name"], {"name": "gw-python*"}, 20)
check("account.devices.list with a name filter", [d["name"] for d in by_name["result"]] == ["gw-python-1"], by_name)

dinfo = account.devices.info(new_id)
check("account.devices.info", dinfo["result"]["name"] == "gw-python-1", dinfo)

edited = account.devices.edit(new_id, {"name": "gw-python-renamed"})
check("account.devices.edit", edited.get("status") is True and account.devices.info(new_id)["result"]["name"] == "gw-python-renamed", edited)

params = account.devices.paramList(new_id, "false")
check("account.devices.paramList", params.get("status") is True and params["result"][0]["key"] == "interval", params)

new_device = tago.Device(new_token)
dparams = new_device.getParams({"sent_status": "false"})
check("device.getParams", dparams.get("status") is True and dparams["result"][0]["value"] == "30s", dparams)
marked = new_device.markParam(dparams["result"][0]["id"])
check("device.markParam", marked.get("status") is True and new_device.getParams({"sent_status": "false"})["result"] == [], marked)

token = account.devices.tokenCreate(new_id, {"name": "second", "permission": "write", "expire_time": "never"})
check("account.devices.tokenCreate", token.get("status") is True and "token" in token["result"], token)
tokens = account.devices.tokenList(new_id)
check("account.devices.tokenList", tokens.get("status") is True and len(tokens["result"]) == 2, tokens)
write_only = tago.Device(token["result"]["token"])
check("a write token cannot read", write_only.find({"variable": "x"}).get("status") is False)
check("account.devices.tokenDelete", account.devices.tokenDelete(token["result"]["token"]).get("status") is True)

deleted = account.devices.delete(new_id)
check("account.devices.delete", deleted.get("status") is True and account.devices.info(new_id).get("status") is False, deleted)

check("a wrong profile token is refused", tago.Account("nope").devices.list().get("status") is False)

sys.exit(1 if failures else 0)
