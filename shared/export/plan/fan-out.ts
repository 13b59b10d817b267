import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';

/** Starts one asynchronous export of one cluster. */
export type ClusterInvoker = (functionName: string, cluster: string) => Promise<void>;

/** Invokes the function itself asynchronously (InvocationType Event) with a catch-up event for one cluster. */
export function lambdaInvoker(lambda: () => LambdaClient): ClusterInvoker {
  return async (functionName, cluster) => {
    const response = await lambda().send(
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
