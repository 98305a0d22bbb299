"""aos_sdk: write an AgentOS skill service in Python (standard library only).

A legacy service is a process the daemon starts for a skill whose `service:`
is not a `.wasm` component. It talks to the kernel over the Unix socket in
$AOS_SERVICE_SOCKET with newline-delimited JSON-RPC 2.0 (docs/legacy-services.md).
This module hides the protocol:

    from aos_sdk import define_service

    @define_service
    def service():
        def guard(input_data, output_data):
            if 'rm -rf /' in output_data['args'].get('command', ''):
                return {'verdict': 'reject', 'reason': 'blocked'}
            return output_data
        return {'hooks': {'tool.before': guard}}

The function decorated with `define_service` returns the service's parts:

- 'hooks':    {hook name: handler(input_data, output_data)} for admission and
              transform hooks. An admission handler returns the (new) output,
              {'verdict': 'reject', 'reason': ...}, {'action': 'allow'|'reject',
              'reason'?, 'output'?} or None (allow unchanged); a transform
              handler returns the new output ({'output': ...} or the bare value)
              or None (unchanged). An exception fails the call.
- 'events':   {event name: handler(payload)}, fire and forget.
- 'commands': handler(args, stdin) for `aos skill invoke` / `skill.invoke`;
              returns a string (stdout), (exit_code, stdout, stderr), a dict
              {'exitCode', 'stdout', 'stderr'} or None.
- 'shutdown': handler() called before the process exits on request.

Inside any handler, `syscall(op, **params)` calls the kernel with the skill's
own rights and returns the data, or raises `SyscallError` (with `.code`).
`config()` is the configuration the service was started with, `owner()` who it
runs for, `caller()` who ran the command being answered.
"""

import json
import os
import socket
import sys
import traceback

__all__ = [
    "define_service",
    "syscall",
    "SyscallError",
    "config",
    "owner",
    "caller",
]

PROTOCOL = "jsonrpc-2.0/ndjson"


class SyscallError(Exception):
    """A syscall the kernel refused: `code` is its error code
    (e.g. 'permission.denied'), `details` its details or None."""

    def __init__(self, code, message, details=None):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.details = details


class _Connection:
    """One socket, both directions. Requests from the kernel that arrive while
    a syscall waits for its answer are queued and handled afterwards."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        self.queue = []
        self.next_id = 0

    def send(self, message):
        message["jsonrpc"] = "2.0"
        data = json.dumps(message, separators=(",", ":")) + "\n"
        self.sock.sendall(data.encode("utf-8"))

    def read(self):
        line = self.reader.readline()
        if not line:
            raise EOFError("the kernel closed the connection")
        return json.loads(line)

    def request(self, method, params):
        self.next_id += 1
        rid = "py-%d" % self.next_id
        self.send({"id": rid, "method": method, "params": params})
        while True:
            message = self.read()
            if "method" in message:
                self.queue.append(message)
            elif message.get("id") == rid:
                if "error" in message:
                    error = message["error"] or {}
                    data = error.get("data") or {}
                    raise SyscallError(
                        data.get("code", "rpc.%s" % error.get("code")),
                        error.get("message", ""),
                        data.get("details"),
                    )
                return message.get("result")

    def next_message(self):
        if self.queue:
            return self.queue.pop(0)
        return self.read()


_state = {"conn": None, "welcome": {}, "caller": None}


def syscall(op, **params):
    """Calls the kernel (`op` is a syscall name such as 'session.get') and
    returns its data; raises SyscallError when the kernel refuses."""
    conn = _state["conn"]
    if conn is None:
        raise RuntimeError("aos_sdk.syscall works only inside a running service")
    params["op"] = op
    return conn.request("syscall", params)


def config():
    """The `config` object the service was started with."""
    return _state["welcome"].get("config") or {}


def owner():
    """{'ownerType': 'system'|'agent'|'session', 'ownerId': id or None}."""
    w = _state["welcome"]
    return {"ownerType": w.get("ownerType"), "ownerId": w.get("ownerId")}


def caller():
    """Who ran the command being answered: {principal, agentId, sessionId,
    dispatchId}, or None outside a command."""
    return _state["caller"]


def _log_exception(what):
    sys.stderr.write("aos_sdk: %s failed:\n%s" % (what, traceback.format_exc()))
    sys.stderr.flush()


def _command_reply(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, tuple) and len(value) == 3:
        code, out, err = value
        return {"exitCode": int(code), "stdout": out or "", "stderr": err or ""}
    return value


class _Service:
    def __init__(self, parts):
        if not isinstance(parts, dict):
            raise TypeError("the service function must return a dict such as {'hooks': {...}}")
        self.hooks = dict(parts.get("hooks") or {})
        self.events = dict(parts.get("events") or {})
        self.commands = parts.get("commands")
        self.on_shutdown = parts.get("shutdown")

    def answer(self, conn, message):
        """Handles one message from the kernel; returns False to stop."""
        method = message.get("method")
        params = message.get("params") or {}
        rid = message.get("id")
        if method == "shutdown":
            if self.on_shutdown is not None:
                try:
                    self.on_shutdown()
                except Exception:
                    _log_exception("shutdown")
            return False
        if method == "event":
            handler = self.events.get(params.get("name"))
            if handler is not None:
                try:
                    handler(params.get("payload"))
                except Exception:
                    _log_exception("event %s" % params.get("name"))
            return True
        if rid is None:
            return True
        try:
            if method == "hook":
                handler = self.hooks.get(params.get("name"))
                if handler is None:
                    raise LookupError("no handler for hook %r" % params.get("name"))
                result = handler(params.get("input"), params.get("output"))
            elif method == "invoke":
                if self.commands is None:
                    raise LookupError("this service takes no commands")
                _state["caller"] = params.get("caller")
                try:
                    result = _command_reply(self.commands(params.get("args") or [], params.get("stdin")))
                finally:
                    _state["caller"] = None
            else:
                raise LookupError("unknown method %r" % method)
            conn.send({"id": rid, "result": result})
        except Exception as e:
            _log_exception(method or "message")
            conn.send({"id": rid, "error": {"code": -32001, "message": "%s: %s" % (type(e).__name__, e)}})
        return True


def _run(parts):
    path = os.environ.get("AOS_SERVICE_SOCKET")
    if not path:
        sys.stderr.write("aos_sdk: $AOS_SERVICE_SOCKET is not set; the AgentOS daemon starts this service\n")
        sys.exit(2)
    service = _Service(parts)
    conn = _Connection(path)
    _state["conn"] = conn
    _state["welcome"] = conn.request(
        "register", {"hooks": list(service.hooks), "events": list(service.events)}
    ) or {}
    try:
        while service.answer(conn, conn.next_message()):
            pass
    except EOFError:
        pass
    finally:
        conn.sock.close()
    sys.exit(0)


def define_service(fn):
    """Declares the service. When the file runs as the daemon's service
    process it registers and serves until shutdown; when it is imported (for
    a test), the function is returned unchanged."""
    if fn.__module__ == "__main__":
        _run(fn())
    return fn
