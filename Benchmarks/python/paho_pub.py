"""The paho-mqtt baseline for `tagoedge-bench mqtt`: the same payload, QoS 1, the same window.

    python paho_pub.py HOST PORT TOPIC FILE COUNT INFLIGHT   -> prints "seconds <s>" and "cpu <s>"
"""
import sys
import time

import paho.mqtt.client as mqtt

host, port, topic, path, count, inflight = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
payload = open(path, "rb").read()
try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-baseline")
except AttributeError:  # paho-mqtt 1.x
    client = mqtt.Client(client_id="paho-baseline")
client.max_inflight_messages_set(inflight)
client.max_queued_messages_set(0)
client.connect(host, port, 60)
client.loop_start()
start, cpu = time.monotonic(), time.process_time()
infos = [client.publish(topic, payload, qos=1) for _ in range(count)]
for info in infos:
    info.wait_for_publish()
print("seconds %.6f\ncpu %.6f" % (time.monotonic() - start, time.process_time() - cpu))
client.loop_stop()
client.disconnect()
