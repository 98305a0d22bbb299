# A service that speaks the protocol by hand and misbehaves as $MODE says
# (read from the `mode` file beside it): the shim must contain each case.
import json
import os
import socket
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
mode = open(os.path.join(here, 'mode')).read().strip()

if mode == 'never-connects':
    time.sleep(60)

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ['AOS_SERVICE_SOCKET'])
r = s.makefile('rb')


def send(obj):
    s.sendall((json.dumps(obj) + '\n').encode())


if mode == 'never-registers':
    time.sleep(60)

hooks = ['tool.before']
if mode == 'out-of-scope':
    hooks = ["tool.before", "skill.index.refresh.before"]
send({'jsonrpc': '2.0', 'id': 1, 'method': 'register', 'params': {'hooks': hooks}})
welcome = json.loads(r.readline())

if mode == 'fork-and-die':
    pid = os.fork()
    if pid == 0:
        time.sleep(300)
        os._exit(0)
    open(os.path.join(here, 'child.pid'), 'w').write(str(pid))
    time.sleep(0.3)
    os._exit(7)

if mode == 'setsid-child':
    import subprocess
    child = subprocess.Popen(['sleep', '300'], start_new_session=True)
    open(os.path.join(here, 'child.pid'), 'w').write(str(child.pid))
    mode = 'prompt'

if mode == 'syscall-flood':
    # Syscalls without reading a single answer.
    line = (json.dumps({'jsonrpc': '2.0', 'id': 0, 'method': 'syscall',
                        'params': {'op': 'skill.list'}}) + '\n').encode()
    for i in range(150000):
        s.sendall(line.replace(b'"id": 0', b'"id": %d' % (i + 10)))
    time.sleep(60)

if mode == 'stdout-flood':
    chunk = b'y' * (1 << 20)
    for _ in range(300):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
    mode = 'prompt'

if mode == 'closes-socket':
    s.shutdown(socket.SHUT_RDWR)
    time.sleep(60)

if mode == 'huge-line':
    s.sendall(b'x' * (100 * 1024 * 1024))
    time.sleep(60)

while True:
    line = r.readline()
    if not line:
        sys.exit(0)
    msg = json.loads(line)
    method, rid = msg.get('method'), msg.get('id')
    if method == 'shutdown':
        if mode == 'ignores-shutdown':
            continue
        sys.exit(0)
    if method != 'hook':
        continue
    if mode == 'garbage':
        s.sendall(b'this is not json\n{"jsonrpc":"2.0"}\n[1,2]\n')
        send({'jsonrpc': '2.0', 'id': rid, 'result': {'action': 'allow'}})
    elif mode == 'wrong-id':
        send({'jsonrpc': '2.0', 'id': rid + 1000, 'result': {'action': 'reject', 'reason': 'wrong'}})
    elif mode == 'late':
        time.sleep(1.5)
        send({'jsonrpc': '2.0', 'id': rid, 'result': {'action': 'reject', 'reason': 'late'}})
        mode = 'prompt'
    elif mode == 'prompt':
        send({'jsonrpc': '2.0', 'id': rid, 'result': {'action': 'allow'}})
    elif mode in ('exit-in-hook', 'crash-restart'):
        os._exit(3)
    elif mode == 'ignores-shutdown':
        send({'jsonrpc': '2.0', 'id': rid, 'result': None})
