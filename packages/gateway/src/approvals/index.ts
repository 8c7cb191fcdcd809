/** Reviews of held statements and access requests. */
export { ApprovalError, createApprovals, type ApprovalErrorCode, type Approvals, type ApprovalsOptions, type PendingReview, type Reviewer, type ReviewRequest } from "./approvals.js";
