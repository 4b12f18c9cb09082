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

# The rest of the Account calls of the original documentation.
me = account.info()
check("account.info", me.get("status") is True and me["result"]["email"] == "emulator@localhost", me)
profile_id = account.profiles.list()["result"][0]["id"]
made = account.tokenCreate({"name": "py token", "profile_id": profile_id, "email": "emulator@localhost",
                            "password": "secret", "expire_time": "1 day"})
check("account.tokenCreate", made.get("status") is True and made["result"]["token"].startswith("p-"), made)
listed = account.profiles.tokenList(profile_id)
check("account.profiles.tokenList", listed.get("status") is True and listed["result"][0]["name"] == "py token", listed)
check("a new profile token works", tago.Account(made["result"]["token"]).buckets.list().get("status") is True)
check("account.profiles.tokenDelete", account.profiles.tokenDelete(profile_id, made["result"]["token"]).get("status") is True)

# Each create answers with the key TagoIO names the new id by (the seed's documentation shows
# {"bucket": …}, {"action": …}, {"dashboard": …}; today's spec {"am_id": …} for a policy).
for name, resource, body, key, id_key in [
    ("buckets", account.buckets, {"name": "py bucket"}, "name", "bucket"),
    ("actions", account.actions, {"name": "py action", "type": "notification", "title": "t", "message": "m",
                                  "trigger": [{"device": "d", "variable": "v", "is": ">", "value": "1"}]}, "name", "action"),
    ("analysis", account.analysis, {"name": "py analysis"}, "name", "id"),
    ("dashboards", account.dashboards, {"label": "py dashboard"}, "label", "dashboard"),
    ("accessManagement", account.accessManagement, {"name": "py rule", "targets": [], "permissions": []}, "name", "am_id"),
]:
    created = resource.create(body)
    rid = created.get("result", {}).get(id_key) if created.get("status") else None
    check(name + ".create", rid is not None, created)
    check(name + ".list", any(i.get("id") == rid for i in resource.list().get("result", [])), resource.list())
    check(name + ".info", resource.info(rid).get("result", {}).get(key) == body[key], resource.info(rid))
    check(name + ".edit", resource.edit(rid, {key: body[key] + " 2"}).get("status") is True
          and resource.info(rid)["result"][key] == body[key] + " 2")
    if name == "analysis":
        check("analysis.run", resource.run(rid, {"variable": "x", "value": 1}).get("status") is True)
    if name == "dashboards":
        widget = resource.widgets.create(rid, {"label": "py widget", "type": "display"})
        wid = widget.get("result", {}).get("widget")
        check("dashboards.widgets.create", wid is not None, widget)
        check("dashboards.widgets.info", resource.widgets.info(rid, wid).get("result", {}).get("label") == "py widget")
        check("dashboards.widgets.edit", resource.widgets.edit(rid, wid, {"label": "w2"}).get("status") is True)
        check("dashboards.widgets.delete", resource.widgets.delete(rid, wid).get("status") is True)
    check(name + ".delete", resource.delete(rid).get("status") is True and resource.info(rid).get("status") is False)
check("actions.create refuses an unknown type", account.actions.create({"name": "x", "type": "teleport"}).get("status") is False)

check("run.info", account.run.info().get("result", {}).get("name") == "TagoEdge Run")
check("run.edit", account.run.edit({"name": "Portal"}).get("status") is True and account.run.info()["result"]["name"] == "Portal")
user = account.run.createUser({"name": "Ana", "email": "ana@example.com", "timezone": "UTC", "password": "pw"})
uid = user.get("result", {}).get("user")
check("run.createUser", uid is not None, user)
check("run.listUsers", any(u.get("id") == uid for u in account.run.listUsers()["result"]))
check("run.getUserInfo", account.run.getUserInfo(uid)["result"]["email"] == "ana@example.com")
check("run.userEdit", account.run.userEdit(uid, {"name": "Ana S"}).get("status") is True)
note = account.run.notificationCreate(uid, {"title": "Pump", "message": "stopped"})
nid = note.get("result", {}).get("id")
check("run.notificationCreate", nid is not None, note)
check("run.notificationList", account.run.notificationList(uid)["result"][0]["title"] == "Pump")
check("run.notificationEdit", account.run.notificationEdit(nid, {"message": "restarted"}).get("status") is True)
check("run.notificationDelete", account.run.notificationDelete(nid).get("status") is True and account.run.notificationList(uid)["result"] == [])
check("run.deleteUser", account.run.deleteUser(uid).get("status") is True)

notes = account.notifications.list({})
check("notifications.list", notes.get("status") is True and len(notes["result"]) == 2, notes)
plain = [n["id"] for n in notes["result"] if n["status"] is None][0]
pending = [n["id"] for n in notes["result"] if n["status"] == "pending"][0]
check("notifications.markAsRead", account.notifications.markAsRead([plain]).get("status") is True)
check("notifications.accept", account.notifications.accept(pending).get("status") is True)
check("notifications.refuse (already accepted)", account.notifications.refuse(pending).get("status") is False)

sys.exit(1 if failures else 0)
