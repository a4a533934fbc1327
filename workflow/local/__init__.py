"""The local cloud: the template's resources, functions and state machines on 127.0.0.1.

Nothing here is deployed: the Workflow layer ships the runtime package (``workflow``
without ``local`` and ``cli``). Functions run from their ``sam build`` artefacts in
worker processes that see only what Lambda would give them.
"""
