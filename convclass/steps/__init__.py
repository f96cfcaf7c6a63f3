"""One module per state of the training pipeline, each with the same shape: an event model in, a result model
out, pure of any AWS client it is not handed (:mod:`convclass.steps.contract`).

==================== ================================= ==========================================
state(s)             module                            Lambda function (``functions/<name>``)
==================== ================================= ==========================================
ValidateInput        :mod:`convclass.steps.plan`       plan
PlanExport, Export,  :mod:`convclass.steps.export`     export
ExportChunks, …
Preprocess           :mod:`convclass.steps.preprocess` preprocess
FindChampion         :mod:`convclass.steps.champion`   evaluate
Evaluate             :mod:`convclass.steps.evaluate`   evaluate
==================== ================================= ==========================================

Each Lambda handler is ``functions.adapter.lambda_handler(<module>.STEP)``.
"""
