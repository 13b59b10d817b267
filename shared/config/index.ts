export {
  ConfigLoader,
  type ConfigLoaderOptions,
  clearConfigCache,
  type LoadedParameter,
  loadParameters,
  SECRETS_MANAGER_REFERENCE,
} from './loader';
export { booleanString, integerString, stringList } from './schema';
