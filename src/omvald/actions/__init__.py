"""From scores to actions and back: the retention plan (``omvald plan``) and its measured effect (``omvald effect``).

- :mod:`omvald.actions.rules`: the rule table (driver x segment x value tier -> action);
- :mod:`omvald.actions.plan`: who to contact, with which action, within the budget, and the control group;
- :mod:`omvald.actions.plan_stage`: the ``plan`` stage (read the scores, write the list and its summary);
- :mod:`omvald.actions.effect`: contacted vs control, per action, segment and tier, with intervals;
- :mod:`omvald.actions.effect_stage`: the ``effect`` command (labels on a newer export, JSON, MLflow).
"""
