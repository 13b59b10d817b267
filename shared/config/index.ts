export {
  type ConfigCache,
  ConfigLoader,
  type ConfigLoaderOptions,
  clearConfigCache,
  createConfigCache,
  type LoadedParameter,
  loadParameters,
  SECRETS_MANAGER_REFERENCE,
} from './loader';
export { booleanString, integerString, stringList } from './schema';
