import { freezeSchema, parseFeatureSchema, type FeatureSchemaFile } from '../schema.js';

const UNSW_NUMERIC = [
  'dur', 'spkts', 'dpkts', 'sbytes', 'dbytes', 'rate', 'sttl', 'dttl', 'sload', 'dload', 'sloss', 'dloss', 'sinpkt',
  'dinpkt', 'sjit', 'djit', 'swin', 'dwin', 'tcprtt', 'synack', 'ackdat', 'smean', 'dmean', 'trans_depth',
  'response_body_len', 'ct_srv_src', 'ct_state_ttl', 'ct_dst_ltm', 'ct_src_dport_ltm', 'ct_dst_sport_ltm',
  'ct_dst_src_ltm', 'is_ftp_login', 'ct_ftp_cmd', 'ct_flw_http_mthd', 'ct_src_ltm', 'ct_srv_dst', 'is_sm_ips_ports',
];

/**
 * UNSW-NB15 partition CSVs (UNSW_NB15_training-set.csv / _testing-set.csv, 45 columns): 37 numeric columns
 * plus proto, service and state one-hot (the common values, then "other"): 37 + 10 + 12 + 8 = 67 features.
 *
 * The binary `label` column decides benign (0) against attack (1); `attack_cat` names the family ("Normal" for
 * benign rows). Dropped: `id` (a row number) and `stcpb` / `dtcpb`, the TCP initial sequence numbers, which
 * are random per connection and only let a model memorise flows. The TTL columns (sttl, dttl, ct_state_ttl)
 * are kept as the dataset's authors use them, but they partly reflect the testbed's host layout; write a schema
 * file that drops them for a stricter benchmark.
 */
const file: FeatureSchemaFile = {
  name: 'unsw-nb15',
  description: 'UNSW-NB15 partition CSVs (Argus/Bro features); id and TCP sequence numbers dropped',
  labelColumn: 'label',
  benignLabels: ['0'],
  knownLabels: ['1'],
  familyColumn: 'attack_cat',
  numericDefaults: { transform: 'log1p-signed', standardize: true },
  numeric: UNSW_NUMERIC,
  categorical: [
    { column: 'proto', encoding: 'onehot', vocabulary: ['tcp', 'udp', 'unas', 'arp', 'ospf', 'sctp', 'icmp', 'any', 'gre'] },
    {
      column: 'service',
      encoding: 'onehot',
      vocabulary: ['-', 'http', 'dns', 'smtp', 'ftp', 'ftp-data', 'pop3', 'ssh', 'snmp', 'ssl', 'dhcp'],
    },
    { column: 'state', encoding: 'onehot', vocabulary: ['INT', 'FIN', 'CON', 'REQ', 'RST', 'ACC', 'CLO'] },
  ],
  drop: ['id', 'stcpb', 'dtcpb'],
  ids: ['id'],
};

export const unswNb15Schema = freezeSchema(parseFeatureSchema(file, 'unsw-nb15 (built-in)'));
