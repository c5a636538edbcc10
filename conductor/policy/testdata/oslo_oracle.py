"""Decide policy cases with oslo.policy and Ironic's registered defaults.

Reads a JSON list of cases on stdin, each {"rule", "creds", "target"}, and
prints a JSON list of booleans: whether Ironic (installed Python package,
enforce_scope and enforce_new_defaults on) allows each. A scope error is a
refusal. The first argument is the policy file (YAML; "{}" for none).
"""
import json
import sys

from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from ironic.common import policy as ironic_policy


def main():
    conf = cfg.ConfigOpts()
    conf([], project='ferric-oracle')
    enforcer = oslo_policy.Enforcer(conf, policy_file=sys.argv[1])
    conf.set_override('enforce_scope', True, group='oslo_policy')
    conf.set_override('enforce_new_defaults', True, group='oslo_policy')
    enforcer.suppress_default_change_warnings = True
    enforcer.register_defaults(ironic_policy.list_policies())
    out = []
    for case in json.load(sys.stdin):
        creds = dict(case['creds'])
        target = dict(creds)
        target.update(case['target'])
        try:
            ok = enforcer.enforce(case['rule'], target, creds)
        except oslo_policy.InvalidScope:
            ok = False
        out.append(bool(ok))
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
