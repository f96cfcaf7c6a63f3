"""Names the training pipeline is read by: its states (the execution history, the path tests, the console and
the docs refer to these) and the errors a run can end with (Fail states, outcome events, alarms)."""

from __future__ import annotations

from convclass import errors

# States.
VALIDATE_INPUT = "ValidateInput"
VALIDATION_UNAVAILABLE = "ValidationUnavailable"
REPORT_REJECTED_REQUEST = "ReportRejectedRequest"
REQUEST_REJECTED = "RequestRejected"
EXPORT_APPROVAL_GATE = "ExportApprovalGate"
USE_EARLIER_MODEL = "UseEarlierModel"
NO_CHAMPION_SCORED = "NoChampionScored"
REQUEST_EXPORT_APPROVAL = "RequestExportApproval"
RECORD_EXPORT_CONSENT = "RecordExportConsent"
RECORD_EXPORT_REFUSAL = "RecordExportRefusal"
EXPORT_APPROVAL_TIMED_OUT = "ExportApprovalTimedOut"
PLAN_EXPORT = "PlanExport"
EXPORT_SIZE = "ExportSize"
EXPORT = "Export"
EXPORT_CHUNKS = "ExportChunks"
EXPORT_CHUNK = "ExportChunk"
FINALIZE_EXPORT = "FinalizeExport"
PREPROCESS = "Preprocess"
REPORT_NO_TRAINING = "ReportNoTraining"
ENDED_WITHOUT_TRAINING = "EndedWithoutTraining"
FIND_CHAMPION = "FindChampion"
TRAIN = "Train"
CLASSIFY_TRAINING_FAILURE = "ClassifyTrainingFailure"
TRAINING_STOPPED = "TrainingStopped"
TRAINING_FAILED = "TrainingFailed"
EVALUATE = "Evaluate"
DEPLOY_DECISION = "DeployDecision"
MODEL_REJECTED = "ModelRejected"
ENDED_REJECTED = "EndedRejected"
REQUEST_DEPLOY_APPROVAL = "RequestDeployApproval"
DEPLOY_APPROVAL_TIMED_OUT = "DeployApprovalTimedOut"
CREATE_MODEL = "CreateModel"
CREATE_ENDPOINT_CONFIG = "CreateEndpointConfig"
INSPECT_ENDPOINT = "InspectEndpoint"
CREATE_OR_UPDATE_ENDPOINT = "CreateOrUpdateEndpoint"
DELETE_FAILED_ENDPOINT = "DeleteFailedEndpoint"
AWAIT_DELETION = "AwaitDeletion"
WAIT_FOR_DELETION = "WaitForDeletion"
COUNT_DELETION_POLL = "CountDeletionPoll"
ENDPOINT_NOT_DELETED = "EndpointNotDeleted"
CREATE_ENDPOINT = "CreateEndpoint"
UPDATE_ENDPOINT = "UpdateEndpoint"
WAIT_FOR_ENDPOINT = "WaitForEndpoint"
DESCRIBE_ENDPOINT = "DescribeEndpoint"
CHECK_ENDPOINT = "CheckEndpoint"
COUNT_POLL = "CountPoll"
ENDPOINT_NOT_DEPLOYED = "EndpointNotDeployed"
DEPLOYMENT_FAILED = "DeploymentFailed"
WRITE_CHAMPION = "WriteChampion"
HOSTING_CHOICE = "HostingChoice"
PUBLISH_SHARED_MODEL = "PublishSharedModel"
WARM_SHARED_MODEL = "WarmSharedModel"
SHARED_MODEL_NOT_SERVED = "SharedModelNotServed"
WRITE_SHARED_CHAMPION = "WriteSharedChampion"
COMMIT_HISTORY = "CommitHistory"
COMMIT_REJECTED_RUN_HISTORY = "CommitRejectedRunHistory"
HISTORY_TO_COMMIT = "HistoryToCommit"
REJECTED_RUN_HISTORY_TO_COMMIT = "RejectedRunHistoryToCommit"
PUBLISH_SUCCEEDED = "PublishSucceeded"
SUCCEEDED = "Succeeded"
PUBLISH_FAILURE = "PublishFailure"
FAILED = "Failed"

# Error names a run can end with (Fail states, outcome events, alarms).
ERROR_INVALID_INPUT = errors.InvalidInput.__name__
ERROR_VALIDATION_FAILED = errors.ValidationFailed.__name__
ERROR_APPROVAL_REJECTED = errors.ApprovalRejected.__name__
ERROR_APPROVAL_TIMED_OUT = errors.ApprovalTimedOut.__name__
ERROR_TRAINING_FAILED = errors.TrainingFailed.__name__
ERROR_TRAINING_STOPPED = errors.TrainingStopped.__name__
ERROR_DEPLOYMENT_FAILED = errors.DeploymentFailed.__name__
ERROR_INSUFFICIENT_DATA = errors.InsufficientData.__name__

#: A gate that got no answer in time.
TIMEOUTS = ["States.Timeout", "States.HeartbeatTimeout"]
#: Caught and reported as the run's outcome; any other error fails the run at its step (redrivable).
FINAL_ERRORS = [error.__name__ for error in errors.FINAL_STEP_ERRORS]
#: InspectEndpoint's status for an endpoint that does not exist.
ENDPOINT_ABSENT = "Absent"
#: Endpoint states from which a deployment cannot come back on its own.
ENDPOINT_DEAD = ["Failed", "OutOfService", "Deleting", "UpdateRollbackFailed"]
