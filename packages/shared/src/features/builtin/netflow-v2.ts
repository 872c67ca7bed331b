import { freezeSchema, parseFeatureSchema, type FeatureSchemaFile } from '../schema.js';

const NETFLOW_V2_NUMERIC = [
  'IN_BYTES', 'IN_PKTS', 'OUT_BYTES', 'OUT_PKTS', 'TCP_FLAGS', 'CLIENT_TCP_FLAGS', 'SERVER_TCP_FLAGS',
  'FLOW_DURATION_MILLISECONDS', 'DURATION_IN', 'DURATION_OUT', 'MIN_TTL', 'MAX_TTL', 'LONGEST_FLOW_PKT',
  'SHORTEST_FLOW_PKT', 'MIN_IP_PKT_LEN', 'MAX_IP_PKT_LEN', 'SRC_TO_DST_SECOND_BYTES', 'DST_TO_SRC_SECOND_BYTES',
  'RETRANSMITTED_IN_BYTES', 'RETRANSMITTED_IN_PKTS', 'RETRANSMITTED_OUT_BYTES', 'RETRANSMITTED_OUT_PKTS',
  'SRC_TO_DST_AVG_THROUGHPUT', 'DST_TO_SRC_AVG_THROUGHPUT', 'NUM_PKTS_UP_TO_128_BYTES', 'NUM_PKTS_128_TO_256_BYTES',
  'NUM_PKTS_256_TO_512_BYTES', 'NUM_PKTS_512_TO_1024_BYTES', 'NUM_PKTS_1024_TO_1514_BYTES', 'TCP_WIN_MAX_IN',
  'TCP_WIN_MAX_OUT', 'ICMP_TYPE', 'ICMP_IPV4_TYPE', 'DNS_QUERY_TYPE', 'DNS_TTL_ANSWER', 'FTP_COMMAND_RET_CODE',
];

/**
 * The 43-field NetFlow v2 feature set shared by NF-BoT-IoT-v2, NF-ToN-IoT-v2, NF-UNSW-NB15-v2 and
 * NF-CSE-CIC-IDS2018-v2: 36 numeric fields, PROTOCOL one-hot (TCP, UDP, ICMP, other) and L7_PROTO (an nDPI
 * application id with hundreds of values) hashed into 16 buckets: 36 + 4 + 16 = 56 features.
 *
 * `Label` (0/1) decides benign against attack; `Attack` names the family ("Benign" for benign rows).
 * Dropped: IPV4_SRC_ADDR, IPV4_DST_ADDR, L4_SRC_PORT, L4_DST_PORT (host and service identifiers: BoT-IoT has
 * a dozen source hosts, so a model would learn who the attackers are), DNS_QUERY_ID (a random transaction id)
 * and Dataset (the name of the release).
 */
const file: FeatureSchemaFile = {
  name: 'netflow-v2',
  description: 'NetFlow v2 (nProbe, 43 fields) as in the NF-*-v2 datasets; addresses, ports and DNS ids dropped',
  labelColumn: 'Label',
  benignLabels: ['0'],
  knownLabels: ['1'],
  familyColumn: 'Attack',
  numericDefaults: { transform: 'log1p-signed', standardize: true },
  numeric: NETFLOW_V2_NUMERIC,
  categorical: [
    { column: 'PROTOCOL', encoding: 'onehot', vocabulary: ['6', '17', '1'] },
    { column: 'L7_PROTO', encoding: 'hash', buckets: 16 },
  ],
  drop: ['IPV4_SRC_ADDR', 'L4_SRC_PORT', 'IPV4_DST_ADDR', 'L4_DST_PORT', 'DNS_QUERY_ID', 'Dataset'],
  ids: ['IPV4_SRC_ADDR', 'L4_SRC_PORT', 'IPV4_DST_ADDR', 'L4_DST_PORT'],
};

export const netflowV2Schema = freezeSchema(parseFeatureSchema(file, 'netflow-v2 (built-in)'));
