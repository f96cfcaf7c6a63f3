"""The convclass Pulumi program (AWS), its policy pack and its offline synthesis.

Pulumi runs ``infra/__main__.py``; ``python -m infra.synth`` runs the same program under mocks to write what
it would create; ``infra.policies`` holds the CrossGuard rules the whole stack must satisfy.
"""
