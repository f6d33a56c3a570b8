export {
  createProvisioning,
  MIN_SHARED_SECRET_LENGTH,
  PROVISIONING_PREFIX,
  type ProvisioningOptions,
} from "./routes.js";
export type {
  BridgeInfo,
  LoginSummary,
  ProvisioningCaller,
  ProvisioningService,
  RemoteProfile,
  ResolvedIdentifier,
  StepAnswer,
} from "./service.js";
