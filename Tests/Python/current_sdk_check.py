"""TagoIO's current Python SDK (`tagoio-sdk`, pinned in .ci/run), unchanged, against the emulator.

    python current_sdk_check.py API_URL PROFILE_TOKEN

Every Device, Resources and Services call of the SDK that the emulator models, as a user of the
SDK would make it. A call on a route the emulator does not model (it answers "... is not
emulated") is counted as not modelled, not as a failure. Prints one line per call and a summary:
`current SDK: N ok, M failed, K not modelled`; exits 1 when a call failed.
"""
import sys
import traceback

from tagoio_sdk.modules.Device.Device import Device
from tagoio_sdk.modules.Resources.Resources import Resources
from tagoio_sdk.modules.Resources.Account import Account
from tagoio_sdk.modules.Services.Services import Services

API, PROFILE_TOKEN = sys.argv[1], sys.argv[2]
REGION = {"api": API, "sse": API + "/events"}
counts = {"ok": 0, "failed": 0, "not modelled": 0}


def call(name, fn, check=lambda r: True):
    """Runs one SDK call; `check` says whether its result is right."""
    try:
        result = fn()
    except Exception as e:  # the SDK raises TagoIORequestError with TagoIO's message
        text = str(e)
        if "is not emulated" in text or "is not part of" in text:
            counts["not modelled"] += 1
            print(f"  --   {name}: not modelled ({text})")
        else:
            counts["failed"] += 1
            print(f"  FAIL {name}: {text}")
        return None
    try:
        good = check(result)
    except Exception:
        good = False
        traceback.print_exc()
    if good:
        counts["ok"] += 1
        print(f"  ok   {name}")
    else:
        counts["failed"] += 1
        print(f"  FAIL {name}: {result!r}")
    return result


resources = Resources({"token": PROFILE_TOKEN, "region": REGION})

# Account: a profile token from e-mail and password, with no token.
profiles = call("profile.list", lambda: resources.profile.list(), lambda r: len(r) >= 1)
profile_id = profiles[0]["id"] if profiles else ""
call("profile.info", lambda: resources.profile.info(profile_id), lambda r: r is not None)
made = call("Account.tokenCreate (e-mail and password, no token)",
            lambda: Account.tokenCreate({"profile_id": profile_id, "email": "emulator@localhost", "password": "secret",
                                         "name": "sdk token"}, REGION),
            lambda r: r["token"].startswith("p-"))
call("profile.tokenList", lambda: resources.profile.tokenList(profile_id), lambda r: any(t.get("name") == "sdk token" for t in r))

# Devices: create with numeric params, list, info, edit, params, tokens, data amount, delete.
created = call("devices.create", lambda: resources.devices.create({
    "name": "sdk gateway", "network": "5bbd0d144051a50034cd19fb", "connector": "5f5a8f3351d4db99c40dece5", "type": "mutable",
    "tags": [{"key": "serial", "value": "SDK1"}], "configuration_params": [{"key": "interval", "value": 600, "sent": False}]}),
    lambda r: r["device_id"] and r["token"])
device_id = created["device_id"] if created else ""
device_token = created["token"] if created else ""
call("devices.listDevice", lambda: resources.devices.listDevice({"amount": 100, "fields": ["id", "name", "tags"]}),
     lambda r: any(d["id"] == device_id for d in r))
call("devices.info", lambda: resources.devices.info(device_id), lambda r: r["name"] == "sdk gateway" and r.get("profile") == profile_id)
call("devices.edit", lambda: resources.devices.edit(device_id, {"name": "sdk gateway 2"}))
call("devices.paramList (a number given at creation is kept)", lambda: resources.devices.paramList(device_id),
     lambda r: [p["value"] for p in r] == ["600"])
call("devices.paramSet", lambda: resources.devices.paramSet(device_id, {"key": "env.delta", "value": "0.2", "sent": False}))
call("devices.tokenList", lambda: resources.devices.tokenList(device_id), lambda r: len(r) >= 1)
write = call("devices.tokenCreate", lambda: resources.devices.tokenCreate(device_id, {"name": "writer", "permission": "write", "expire_time": "never"}),
             lambda r: r["token"])

# The Device API with the device's token.
device = Device({"token": device_token, "region": REGION})
call("device.info", lambda: device.info(), lambda r: r["id"] == device_id and "updated_at" in r)
call("device.sendData", lambda: device.sendData([{"variable": "temperature", "value": 21.5, "unit": "C"},
                                                 {"variable": "temperature", "value": 22.0, "unit": "C"}]))
call("device.getData", lambda: device.getData({"variables": ["temperature"], "qty": 10}), lambda r: len(r) == 2)
call("devices.amount", lambda: resources.devices.amount(device_id), lambda r: r == 2)
call("device.deleteData (query last_item)", lambda: device.deleteData({"variables": ["temperature"], "query": "last_item"}))
call("device.getData after", lambda: device.getData({"variables": ["temperature"]}), lambda r: [d["value"] for d in r] == [21.5])
params = call("device.getParameters", lambda: device.getParameters(True), lambda r: len(r) >= 1)
if params:
    call("device.setParameterAsRead", lambda: device.setParameterAsRead(params[0]["id"]))
if write:
    writer = Device({"token": write["token"], "region": REGION})
    try:
        writer.getData()
        counts["failed"] += 1
        print("  FAIL a write token reads data")
    except Exception:
        counts["ok"] += 1
        print("  ok   a write token is refused a read")
    call("devices.tokenDelete", lambda: resources.devices.tokenDelete(write["token"]))

# Actions in today's model, analyses with a run, dashboards with widgets, access policies.
action = call("actions.create", lambda: resources.actions.create({
    "name": "hot", "type": "condition", "active": True,
    "trigger": [{"device": device_id, "variable": "temperature", "is": ">", "value": "30", "value_type": "number"}],
    "action": {"type": "notification", "subject": "Hot", "message": "$VALUE$"}}), lambda r: r["action"])
if action:
    call("actions.info", lambda: resources.actions.info(action["action"]), lambda r: r["action"]["type"] == "notification")
    call("actions.edit", lambda: resources.actions.edit(action["action"], {"active": False}))
    call("actions.list", lambda: resources.actions.list(), lambda r: any(a["id"] == action["action"] for a in r))
    call("actions.delete", lambda: resources.actions.delete(action["action"]))
analysis = call("analysis.create", lambda: resources.analysis.create({"name": "sdk analysis", "runtime": "python"}),
                lambda r: r["id"] and r["token"])
if analysis:
    call("analysis.info", lambda: resources.analysis.info(analysis["id"]), lambda r: r["name"] == "sdk analysis")
    call("analysis.edit", lambda: resources.analysis.edit(analysis["id"], {"name": "sdk analysis 2"}))
    call("analysis.run", lambda: resources.analysis.run(analysis["id"], {"variable": "x", "value": 1}))
    call("analysis.list", lambda: resources.analysis.list(), lambda r: any(a["id"] == analysis["id"] for a in r))
dashboard = call("dashboards.create", lambda: resources.dashboards.create({"label": "sdk dashboard"}), lambda r: r["dashboard"])
if dashboard:
    did = dashboard["dashboard"]
    call("dashboards.info", lambda: resources.dashboards.info(did), lambda r: r["label"] == "sdk dashboard")
    call("dashboards.edit", lambda: resources.dashboards.edit(did, {"label": "sdk dashboard 2"}))
    call("dashboards.listDashboard", lambda: resources.dashboards.listDashboard(), lambda r: any(d["id"] == did for d in r))
    widget = call("dashboards.widgets.create", lambda: resources.dashboards.widgets.create(did, {"label": "w", "type": "display"}),
                  lambda r: r["widget"])
    if widget:
        call("dashboards.widgets.info", lambda: resources.dashboards.widgets.info(did, widget["widget"]), lambda r: r["label"] == "w")
        call("dashboards.widgets.delete", lambda: resources.dashboards.widgets.delete(did, widget["widget"]))
    call("dashboards.delete", lambda: resources.dashboards.delete(did))
policy = call("access.create", lambda: resources.access.create({"name": "sdk policy", "active": True,
                                                                "targets": [["run_user", "tag", {"key": "role", "value": "tech"}]],
                                                                "permissions": [{"effect": "allow", "action": ["access"], "resource": ["dashboard"]}]}),
              lambda r: r["am_id"])
if policy:
    call("access.info", lambda: resources.access.info(policy["am_id"]), lambda r: r["name"] == "sdk policy")
    call("access.edit", lambda: resources.access.edit(policy["am_id"], {"name": "sdk policy 2"}))
    call("access.list", lambda: resources.access.list(), lambda r: any(p["id"] == policy["am_id"] for p in r))
    call("access.delete", lambda: resources.access.delete(policy["am_id"]))

# TagoRUN: settings, users and their notifications.
call("run.info", lambda: resources.run.info(), lambda r: r["name"])
call("run.edit", lambda: resources.run.edit({"name": "SDK Portal"}))
user = call("run.userCreate", lambda: resources.run.userCreate({"name": "Ana", "email": "ana@example.com", "timezone": "UTC", "password": "pw"}),
            lambda r: r["user"])
if user:
    uid = user["user"]
    call("run.userInfo", lambda: resources.run.userInfo(uid), lambda r: r["email"] == "ana@example.com")
    call("run.listUsers", lambda: resources.run.listUsers({"amount": 10}), lambda r: any(u["id"] == uid for u in r))
    call("run.userEdit", lambda: resources.run.userEdit(uid, {"name": "Ana S."}))
    note = call("run.notificationCreate", lambda: resources.run.notificationCreate(uid, {"title": "Pump", "message": "stopped"}),
                lambda r: r["id"])
    call("run.notificationList", lambda: resources.run.notificationList(uid), lambda r: len(r) == 1)
    if note:
        call("run.notificationEdit", lambda: resources.run.notificationEdit(note["id"], {"message": "restarted"}))
        call("run.notificationDelete", lambda: resources.run.notificationDelete(note["id"]))
    call("run.userDelete", lambda: resources.run.userDelete(uid))

# The profile's notifications.
mine = call("notifications.create", lambda: resources.notifications.create({"title": "Maintenance", "message": "Monday"}), lambda r: r["id"])
call("notifications.list", lambda: resources.notifications.list(), lambda r: any(n["id"] == mine["id"] for n in r) if mine else False)
if mine:
    call("notifications.markAsRead", lambda: resources.notifications.markAsRead([mine["id"]]))
    call("notifications.markAllAsRead", lambda: resources.notifications.markAllAsRead())
    try:
        resources.notifications.notificationButton(mine["id"], "accept")
        counts["failed"] += 1
        print("  FAIL notifications.notificationButton: a notification with no buttons accepted one")
    except Exception:
        counts["ok"] += 1
        print("  ok   notifications.notificationButton refuses a button the notification does not have")
    call("notifications.remove", lambda: resources.notifications.remove(mine["id"]))

# Services, with the analysis's token; a notification reaches the profile's inbox.
if analysis:
    services = Services({"token": analysis["token"], "region": REGION})
    call("services.sms.send", lambda: services.sms.send({"to": "+5511999999999", "message": "Pump stopped"}))
    call("services.email.send", lambda: services.email.send({"to": "ops@example.com", "subject": "Report", "message": "Attached"}))
    call("services.Notification.send", lambda: services.Notification.send({"title": "From analysis", "message": "hello"}))
    call("the service notification is in the inbox", lambda: resources.notifications.list(),
         lambda r: any(n.get("title") == "From analysis" for n in r))
    call("services.console.log", lambda: services.console.log("a line"))
    call("services.MQTT.publish", lambda: services.MQTT.publish({"topic": "gw/cmd", "message": "on", "bucket": device_id,
                                                                  "options": {"qos": 1, "retain": False}}))
    call("analysis.delete", lambda: resources.analysis.delete(analysis["id"]))

call("devices.delete", lambda: resources.devices.delete(device_id))
total = sum(counts.values())
print(f"current SDK: {counts['ok']} ok, {counts['failed']} failed, {counts['not modelled']} not modelled ({total} calls)")
sys.exit(1 if counts["failed"] else 0)
