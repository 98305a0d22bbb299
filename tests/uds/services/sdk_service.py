# A service on the Python aos_sdk using every part of it: hooks (admission
# and transform), events, syscalls from inside a hook, commands, shutdown.
import json
import os
import time

from aos_sdk import SyscallError, caller, config, define_service, syscall

seen = []
errors = []


@define_service
def service():
    def before(input_data, output_data):
        cmd = output_data['args'].get('command', '')
        if cmd.startswith('#title'):
            scb = syscall('session.get', sessionId=input_data['sessionId'])
            output_data['args']['command'] = 'echo title: ' + scb['title']
            return output_data
        if cmd.startswith('#denied'):
            try:
                syscall('agent.list')
            except SyscallError as e:
                return {'action': 'reject', 'reason': '%s %s' % (e.code, e.message)}
            return {'action': 'allow'}
        if cmd.startswith('#sleep'):
            time.sleep(float(cmd.split()[1]))
        if cmd.startswith('#raise'):
            raise ValueError('asked to fail')
        return None

    def after(input_data, output_data):
        return {'output': {'result': output_data['result'].upper()}}

    def on_dispatch(payload):
        seen.append(payload.get('dispatchId'))

    def on_error(payload):
        errors.append('%s: %s' % (payload.get('skillName'), payload.get('message')))

    def commands(args, stdin):
        if args == ['events']:
            return '\n'.join(str(s) for s in seen)
        if args == ['errors']:
            return '\n'.join(errors)
        if args == ['caller']:
            return json.dumps(caller())
        if args == ['config']:
            return json.dumps(config())
        if args == ['pid']:
            return str(os.getpid())
        if args == ['stdin']:
            return (4, stdin, 'to stderr')
        return (2, '', 'unknown command %r' % (args,))

    def shutdown():
        marker = config().get('shutdownMarker')
        if marker:
            open(marker, 'w').write('clean')

    return {
        'hooks': {'tool.before': before, 'tool.after': after},
        'events': {'session.dispatch.after': on_dispatch, 'service.error': on_error},
        'commands': commands,
        'shutdown': shutdown,
    }
