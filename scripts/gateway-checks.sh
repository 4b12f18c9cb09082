#!/bin/bash
# The checks scripts/gateway-test runs inside its Debian 12 guest, as root, from the payload disk
# (/payload). One line each on the console: `GTEST ok NAME` or `GTEST fail NAME: WHY`.
ok() { echo "GTEST ok $1"; }
fail() { echo "GTEST fail $1: $2"; }
token=gateway-test-token

# The emulator's counters, without curl (the guest has bash's /dev/tcp).
emu_stat() {
    exec 3<>/dev/tcp/127.0.0.1/8480 || return 1
    printf 'GET /_emulator/stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    local answer
    answer=$(cat <&3)
    exec 3>&-
    echo "$answer" | tr ',{}' '\n\n\n' | sed -n "s/^\"$1\":\([0-9]*\).*/\1/p" | head -1
}
records() { local n; n=$(emu_stat records); echo "${n:-0}"; }

phase_file=/var/lib/gateway-test-phase
if [ -f "$phase_file" ]; then
    # Second boot: the readings left waiting before the reboot are sent after it.
    waiting_through=$(cat "$phase_file")
    systemd-run --unit=emulator --quiet $(command -v tagoedge) emulator --port 8480 --device-token "$token" --rate-limit none
    acked=0
    for i in $(seq 1 120); do
        acked=$(tagoedge spool inspect /var/lib/tagoedge/spool 2>/dev/null | awk '/^acknowledged through/ {print $3}')
        [ "${acked:-0}" -ge "$waiting_through" ] 2>/dev/null && break
        sleep 1
    done
    [ "${acked:-0}" -ge "$waiting_through" ] 2>/dev/null && ok "after a reboot, the readings waiting before it (through seq $waiting_through) are sent" \
        || fail "reboot" "acknowledged through ${acked:-none}, readings were waiting through $waiting_through"
    [ "$(systemctl is-active tagoedge)" = active ] && ok "the service came back with the boot" || fail "boot" "$(systemctl is-active tagoedge)"
    # Purge: nothing left, and nothing the service user could write decides what goes. The
    # service owns /var/lib/tagoedge: a note there naming an empty group must not get it deleted.
    groupadd --system canary
    # (The file is root's, its folder the service's: the service user can replace it.)
    setpriv --reuid=tagoedge --regid=tagoedge --init-groups sh -c \
        'f=/var/lib/tagoedge/.groups-made-by-package; { cat $f 2>/dev/null; echo canary; } > $f.new && mv -f $f.new $f' \
        || fail "purge setup" "the service user could not write in /var/lib/tagoedge"
    dpkg --purge tagoedge > /tmp/dpkg-purge.log 2>&1 || fail "purge" "$(tail -3 /tmp/dpkg-purge.log | tr '\n' ' ')"
    left=$(ls -d /etc/tagoedge /var/lib/tagoedge /var/lib/tagoedge-package /usr/local/bin/tagoedge /usr/bin/tagoedge /lib/systemd/system/tagoedge.service 2>/dev/null)
    [ -z "$left" ] && ok "purge leaves nothing" || fail "purge" "left: $(echo $left)"
    getent group canary >/dev/null && ok "purge deletes no group named in a file the service user can write" || fail "purge" "it deleted the group canary, named in /var/lib/tagoedge"
    rm -f "$phase_file"
    exit 0
fi

# 1. Install on the fresh system.
if dpkg -i /payload/tagoedge.deb > /tmp/dpkg.log 2>&1; then
    ok "the package installs on a fresh Debian 12"
else
    fail "dpkg -i" "$(tail -3 /tmp/dpkg.log | tr '\n' ' ')"
fi
install -m 0640 -o root -g tagoedge /payload/tagoedge.toml /etc/tagoedge/tagoedge.toml
install -m 0644 /payload/bme280-0x76.i2cdump /etc/tagoedge/
printf '%s' "$token" > /etc/tagoedge/token
chown tagoedge:tagoedge /etc/tagoedge/token
chmod 0600 /etc/tagoedge/token

# The emulator in the guest, as TagoIO.
systemd-run --unit=emulator --quiet $(command -v tagoedge) emulator --port 8480 --device-token "$token" --rate-limit none
for i in $(seq 1 50); do emu_stat requests >/dev/null 2>&1 && break; sleep 0.2; done

# 2. Enabled and running under the unit's sandbox for 60 s.
systemctl enable --now tagoedge > /dev/null 2>&1
sleep 60
state=$(systemctl is-active tagoedge)
[ "$state" = active ] && ok "after 60 s the unit is active" || fail "unit state" "$state; $(systemctl status tagoedge --no-pager -n 5 2>&1 | tail -5 | tr '\n' ' ')"
restarts=$(systemctl show -p NRestarts --value tagoedge)
[ "$restarts" = 0 ] && ok "NRestarts=0" || fail "restarts" "NRestarts=$restarts"
result=$(systemctl show -p Result --value tagoedge)
[ "$result" = success ] && ok "no SIGSYS, no watchdog kill (Result=success)" || fail "result" "Result=$result"
n=$(records)
[ "$n" -gt 0 ] && ok "readings reached the emulator ($n records)" || fail "delivery" "the emulator holds $n records"
errors=$(journalctl -u tagoedge -p err --no-pager -q 2>/dev/null)
[ -z "$errors" ] && ok "journalctl -u tagoedge shows no error" || fail "journal errors" "$(echo "$errors" | head -3 | tr '\n' ' ')"
if tagoedge status --config /etc/tagoedge/tagoedge.toml > /tmp/status.txt 2>&1; then
    ok "tagoedge status answers"
else
    fail "tagoedge status" "$(head -3 /tmp/status.txt | tr '\n' ' ')"
fi
# doctor and status tell the same story: uploads work, the unit is installed and enabled. (The
# guest has no NTP: the clock check may only warn.)
doctor_says() {  # $1 a check's name: its status in doctor's last JSON answer
    grep -o "\"check\":\"$1\",[^}]*" /tmp/doctor.json | grep -o '"status":"[a-z]*"' | head -1 | cut -d'"' -f4
}
json_number() { grep -o "\"$1\":[0-9]*" "$2" | head -1 | cut -d: -f2; }
tagoedge doctor --config /etc/tagoedge/tagoedge.toml --json > /tmp/doctor.json 2>/dev/null; doctor_rc=$?
tagoedge status --config /etc/tagoedge/tagoedge.toml --json > /tmp/status.json 2>/dev/null
acknowledged=$(json_number acknowledged /tmp/status.json)
n=$(records)
if [ "$doctor_rc" = 0 ] && [ "$(doctor_says api)" = ok ] && [ "$(doctor_says token)" = ok ] && [ "$(doctor_says service)" = ok ] \
    && [ "${acknowledged:-0}" -gt 0 ] && [ "${acknowledged:-0}" -le "$n" ]; then
    ok "doctor and status agree: API and token ok, the unit enabled; $acknowledged acknowledged of the emulator's $n"
else
    fail "doctor vs status" "doctor exit $doctor_rc (api $(doctor_says api), token $(doctor_says token), service $(doctor_says service)); status acknowledged ${acknowledged:-none}, the emulator holds $n"
fi

# 3. Readings kept across a restart while TagoIO is away, then delivered.
systemctl stop emulator
sleep 8
# While it is away, doctor says the API cannot be reached and status shows readings waiting.
tagoedge doctor --config /etc/tagoedge/tagoedge.toml --json > /tmp/doctor.json 2>/dev/null; doctor_rc=$?
tagoedge status --config /etc/tagoedge/tagoedge.toml --json > /tmp/status.json 2>/dev/null
waiting=$(grep -o '"spool":{[^}]*' /tmp/status.json | grep -o '"records":[0-9]*' | cut -d: -f2)
if [ "$doctor_rc" = 1 ] && [ "$(doctor_says api)" = failed ] && [ "${waiting:-0}" -gt 0 ]; then
    ok "in an outage doctor fails the API check and status shows $waiting reading(s) waiting"
else
    fail "doctor vs status in an outage" "doctor exit $doctor_rc, api $(doctor_says api); status: ${waiting:-no} reading(s) waiting"
fi
systemctl restart tagoedge
sleep 5
before=$(records 2>/dev/null)
systemctl start emulator 2>/dev/null || systemd-run --unit=emulator2 --quiet $(command -v tagoedge) emulator --port 8480 --device-token "$token" --rate-limit none
for i in $(seq 1 100); do [ "$(records)" -gt 0 ] && break; sleep 0.3; done
sleep 10
after=$(records)
[ "$after" -gt 0 ] && ok "readings spooled while TagoIO was away arrive after a restart ($after records in the new emulator)" || fail "restart" "the emulator holds $after records"
[ "$(systemctl show -p NRestarts --value tagoedge)" = 0 ] && ok "still no restart by systemd" || fail "restarts after outage" "NRestarts=$(systemctl show -p NRestarts --value tagoedge)"

# 4. The watchdog while the uplink waits: a refused token makes it wait 5 minutes; with the
# watchdog shortened to 10 s the agent must prove it is alive while it waits, not only when it
# goes round.
mkdir -p /etc/systemd/system/tagoedge.service.d
printf '[Service]\nWatchdogSec=10\n' > /etc/systemd/system/tagoedge.service.d/gateway-test.conf
printf 'a-token-tagoio-refuses' > /etc/tagoedge/token
systemctl daemon-reload
systemctl restart tagoedge
sleep 45
restarts=$(systemctl show -p NRestarts --value tagoedge)
result=$(systemctl show -p Result --value tagoedge)
refused=$(journalctl -u tagoedge --no-pager -q --since "-50s" | grep -ci "refused\|401\|token")
[ "$restarts" = 0 ] && [ "$result" = success ] && [ "$refused" -gt 0 ] \
    && ok "a refused token waits 5 minutes under a 10 s watchdog without a restart" || fail "watchdog" "NRestarts=$restarts Result=$result, refusals logged: $refused"
printf '%s' "$token" > /etc/tagoedge/token

# The watchdog through an uplink outage at the longest backoff (30 s waits, shortened from 2
# minutes) with every sensor read every 5 minutes: neither loop goes round within 10 s, both beat.
systemctl stop emulator2 emulator 2>/dev/null
sed -e 's/^interval = .*/interval = "5m"/' -e 's/^transport = "http"/transport = "http"\nbackoff_base = "30s"\nbackoff_cap = "30s"/' \
    /payload/tagoedge.toml > /etc/tagoedge/tagoedge.toml
systemctl restart tagoedge
since=$(date +%s)
long=""
for i in $(seq 1 120); do
    long=$(journalctl -u tagoedge --no-pager -q --since "@$since" | grep -oE 'retrying in [0-9]{5,}ms' | head -1)
    [ -n "$long" ] && break
    sleep 1
done
sleep 32
restarts=$(systemctl show -p NRestarts --value tagoedge)
result=$(systemctl show -p Result --value tagoedge)
[ -n "$long" ] && [ "$restarts" = 0 ] && [ "$result" = success ] && [ "$(systemctl is-active tagoedge)" = active ] \
    && ok "an outage at the longest backoff ($long) with 5-minute sensors, under a 10 s watchdog, without a restart" \
    || fail "watchdog in an outage" "${long:-no wait of 10 s or more logged}; NRestarts=$restarts Result=$result"
install -m 0640 -o root -g tagoedge /payload/tagoedge.toml /etc/tagoedge/tagoedge.toml
rm /etc/systemd/system/tagoedge.service.d/gateway-test.conf
systemctl daemon-reload
systemctl restart tagoedge
systemd-run --unit=emulator3 --quiet $(command -v tagoedge) emulator --port 8480 --device-token "$token" --rate-limit none

# 4c. The disk under the spool fails (a dying SD card): device-mapper's error target answers every
# read and write with EIO for 30 s, then the disk comes back. The agent must stay up, say so in a
# few lines (not one per append), and append again once the disk is back.
if insmod /payload/modules/dm-mod.ko 2>/dev/null || [ -e /dev/mapper/control ]; then
    sectors=$(blockdev --getsz /dev/vdc)
    dmsetup create faulty --table "0 $sectors linear /dev/vdc 0"
    # (No journal, errors=continue: the file system goes on after a failed write, as the spool must.)
    mkfs.ext4 -q -F -O ^has_journal /dev/mapper/faulty
    mkdir -p /var/lib/tagoedge/faulty && mount -o errors=continue /dev/mapper/faulty /var/lib/tagoedge/faulty
    chown tagoedge:tagoedge /var/lib/tagoedge/faulty
    sed -e 's#^path = .*#path = "/var/lib/tagoedge/faulty/spool"#' -e 's#^sync = .*#sync = "always"#' /payload/tagoedge.toml > /etc/tagoedge/tagoedge.toml
    systemctl restart tagoedge
    sleep 8
    since=$(date +%s)
    # (Tables swapped without flushing: a flush through the error target would fail the switch.)
    swap_table() { dmsetup load faulty --table "$1" && dmsetup suspend --noflush faulty && dmsetup resume faulty; }
    swap_table "0 $sectors error"
    sleep 30
    eio=$(journalctl -u tagoedge --no-pager -q --since "@$since" | grep -c "spool.*Input/output error")
    failing_state=$(systemctl is-active tagoedge)
    swap_table "0 $sectors linear /dev/vdc 0"
    table_after=$(dmsetup table faulty | awk '{print $3}')
    again=""
    for i in $(seq 1 30); do
        again=$(journalctl -u tagoedge --no-pager -q --since "@$since" | grep -m1 "appends work again")
        [ -n "$again" ] && break
        sleep 1
    done
    restarts=$(systemctl show -p NRestarts --value tagoedge)
    if [ "$failing_state" = active ] && [ "$restarts" = 0 ] && [ "$eio" -ge 1 ] && [ "$eio" -le 3 ] && [ -n "$again" ]; then
        ok "a spool disk failing with EIO for 30 s: the agent stays up, says so $eio time(s), and appends again once it is back"
    else
        fail "failing disk" "state $failing_state, NRestarts=$restarts, $eio EIO line(s) logged, recovery: ${again:-not logged} (table after: $table_after; $(journalctl -u tagoedge --no-pager -q --since "@$since" | grep spool | tail -2 | tr '\n' ' '))"
    fi
    install -m 0640 -o root -g tagoedge /payload/tagoedge.toml /etc/tagoedge/tagoedge.toml
    systemctl restart tagoedge
    umount /var/lib/tagoedge/faulty 2>/dev/null; rmdir /var/lib/tagoedge/faulty 2>/dev/null; dmsetup remove faulty 2>/dev/null
else
    fail "failing disk" "device-mapper is not available in the guest"
fi

# 5. Upgrade: the spool and the config stay, the service runs again.
spool_before=$(stat -c %i /var/lib/tagoedge/spool 2>/dev/null)
if dpkg -i /payload/tagoedge-upgrade.deb > /tmp/dpkg-up.log 2>&1; then
    sleep 5
    [ "$(systemctl is-active tagoedge)" = active ] && ok "upgrade: the service runs again" || fail "upgrade" "$(systemctl is-active tagoedge)"
    [ -f /var/lib/tagoedge/spool ] && cmp -s /payload/tagoedge.toml /etc/tagoedge/tagoedge.toml && ok "upgrade: the spool and the config stay" || fail "upgrade kept" "spool or config changed"
else
    fail "upgrade" "$(tail -3 /tmp/dpkg-up.log | tr '\n' ' ')"
fi

# 6. Readings waiting when the gateway reboots: TagoIO away, readings in the spool, reboot.
systemctl stop emulator3 emulator2 emulator 2>/dev/null
sleep 8
newest=$(tagoedge spool inspect /var/lib/tagoedge/spool 2>/dev/null | awk '/^newest seq/ {print $3}')
records=$(tagoedge spool inspect /var/lib/tagoedge/spool 2>/dev/null | awk '/^records/ {print $2}')
if [ "${records:-0}" -gt 0 ] 2>/dev/null; then
    ok "readings wait in the spool while TagoIO is away ($records, through seq $newest)"
    echo "$newest" > "$phase_file"
    sync
    echo "GTEST reboot"
else
    fail "waiting readings" "the spool holds ${records:-none} records"
fi
