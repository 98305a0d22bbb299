from aos_sdk import define_service

@define_service
def service():
    def guard(input_data, output_data):
        cmd = output_data['args'].get('command', '')
        for pattern in ['rm -rf /', 'DROP TABLE', ':(){ :|:& };:']:
            if pattern in cmd:
                return {'verdict': 'reject', 'reason': f'blocked: {pattern}'}
        return output_data

    return {'hooks': {'tool.before': guard}}
