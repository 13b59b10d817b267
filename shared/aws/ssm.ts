import { SSMClient } from '@aws-sdk/client-ssm';
import { lazy } from '../lazy';
import { common } from './clients';

/**
 * The configuration loader's SSM client, one per container. A module of its own,
 * imported by the loader only: the exporter always reads SSM, the rotation function
 * only when it is given a configuration path (it loads the loader, and so this, then).
 */
export const ssmClient = /* @__PURE__ */ lazy(() => new SSMClient(common));
