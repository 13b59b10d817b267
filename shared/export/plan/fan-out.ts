import type { LambdaClient } from '@aws-sdk/client-lambda';
import { lazy } from '../../lazy';

// A cluster's own run never invokes Lambda: the SDK's command loads with the first fan-out.
const lambdaSdk = lazy(() => import('../../aws/lambda'));

/** Starts one asynchronous export of one cluster. */
export type ClusterInvoker = (functionName: string, cluster: string) => Promise<void>;

/** Invokes the function itself asynchronously (InvocationType Event) with a catch-up event for one cluster. */
export function lambdaInvoker(lambda: () => Promise<LambdaClient>): ClusterInvoker {
  return async (functionName, cluster) => {
    const { InvokeCommand } = await lambdaSdk();
    const response = await (await lambda()).send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: 'Event',
        Payload: new TextEncoder().encode(JSON.stringify({ cluster })),
      }),
    );
    if (response.StatusCode !== 202) {
      throw new Error(`Asynchronous invocation of ${functionName} answered ${response.StatusCode}`);
    }
  };
}
