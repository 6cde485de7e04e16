/** Custom search attributes that make deliveries and recipients findable in the Temporal Web UI. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DeliveryIdAttribute = defineSearchAttributeKey('DeliveryId', SearchAttributeType.KEYWORD);
export const EfsStatusAttribute = defineSearchAttributeKey('EfsStatus', SearchAttributeType.KEYWORD);
export const RecipientDomainAttribute = defineSearchAttributeKey('RecipientDomain', SearchAttributeType.KEYWORD);
export const FailureReasonAttribute = defineSearchAttributeKey('FailureReason', SearchAttributeType.KEYWORD);
export const DeliveryStateAttribute = defineSearchAttributeKey('DeliveryState', SearchAttributeType.KEYWORD);

/** Every custom attribute the project needs registered on the server (the dev server's --search-attribute flags). */
export const ALL_SEARCH_ATTRIBUTES = [
  DeliveryIdAttribute,
  EfsStatusAttribute,
  RecipientDomainAttribute,
  FailureReasonAttribute,
  DeliveryStateAttribute,
];
