import { freezeSchema, parseFeatureSchema, type FeatureSchemaFile } from '../schema.js';

/** The 81 flow statistics of the corrected CICFlowMeter (CIC-IDS2017 "improved" release, CNS2022 column names). */
const CICFLOWMETER_FEATURES = [
  'Flow Duration', 'Total Fwd Packet', 'Total Bwd packets', 'Total Length of Fwd Packet',
  'Total Length of Bwd Packet', 'Fwd Packet Length Max', 'Fwd Packet Length Min', 'Fwd Packet Length Mean',
  'Fwd Packet Length Std', 'Bwd Packet Length Max', 'Bwd Packet Length Min', 'Bwd Packet Length Mean',
  'Bwd Packet Length Std', 'Flow Bytes/s', 'Flow Packets/s', 'Flow IAT Mean', 'Flow IAT Std', 'Flow IAT Max',
  'Flow IAT Min', 'Fwd IAT Total', 'Fwd IAT Mean', 'Fwd IAT Std', 'Fwd IAT Max', 'Fwd IAT Min', 'Bwd IAT Total',
  'Bwd IAT Mean', 'Bwd IAT Std', 'Bwd IAT Max', 'Bwd IAT Min', 'Fwd PSH Flags', 'Bwd PSH Flags', 'Fwd URG Flags',
  'Bwd URG Flags', 'Fwd RST Flags', 'Bwd RST Flags', 'Fwd Header Length', 'Bwd Header Length', 'Fwd Packets/s',
  'Bwd Packets/s', 'Packet Length Min', 'Packet Length Max', 'Packet Length Mean', 'Packet Length Std',
  'Packet Length Variance', 'FIN Flag Count', 'SYN Flag Count', 'RST Flag Count', 'PSH Flag Count', 'ACK Flag Count',
  'URG Flag Count', 'CWR Flag Count', 'ECE Flag Count', 'Down/Up Ratio', 'Average Packet Size',
  'Fwd Segment Size Avg', 'Bwd Segment Size Avg', 'Fwd Bytes/Bulk Avg', 'Fwd Packet/Bulk Avg', 'Fwd Bulk Rate Avg',
  'Bwd Bytes/Bulk Avg', 'Bwd Packet/Bulk Avg', 'Bwd Bulk Rate Avg', 'Subflow Fwd Packets', 'Subflow Fwd Bytes',
  'Subflow Bwd Packets', 'Subflow Bwd Bytes', 'FWD Init Win Bytes', 'Bwd Init Win Bytes', 'Fwd Act Data Pkts',
  'Fwd Seg Size Min', 'Active Mean', 'Active Std', 'Active Max', 'Active Min', 'Idle Mean', 'Idle Std', 'Idle Max',
  'Idle Min', 'ICMP Code', 'ICMP Type', 'Total TCP Flow Time',
];

/** Attack labels of the CIC-IDS2017 improved release once its "- Attempted" rows are removed. */
const CIC_ATTACK_LABELS = [
  'Botnet', 'DDoS', 'DoS GoldenEye', 'DoS Hulk', 'DoS Slowhttptest', 'DoS Slowloris', 'FTP-Patator', 'Heartbleed',
  'Infiltration', 'Infiltration - Portscan', 'Portscan', 'SSH-Patator', 'Web Attack - Brute Force',
  'Web Attack - SQL Injection', 'Web Attack - XSS',
];

/**
 * CICFlowMeter flows as in the CIC-IDS2017 "improved" (CNS2022) release: 81 statistics, signed-log and
 * standardised, plus Protocol one-hot (TCP, UDP, ICMP, other): 85 features.
 *
 * Dropped, because they identify hosts, flows or moments rather than behaviour: id, Flow ID, Src IP,
 * Src Port, Dst IP, Timestamp; and Attempted Category, which is part of the labelling.
 *
 * Dst Port is dropped too. In this capture each attack family is tied to one service port (Botnet to 8080,
 * FTP-Patator to 21, SSH-Patator to 22, the web attacks to 80), so a model keys on the port instead of the
 * flow's behaviour: it then misses a known family moved to another port and, worse for a federation of
 * offices, scores an unseen family by the port it happens to use. A port number is also not a quantity
 * (8080 is not "more" than 80). It stays available to the analyst as an identifier column in alerts.
 * Protocol is kept: TCP/UDP/ICMP is a property of the traffic itself, with three values that one-hot well.
 *
 * Labels other than BENIGN and the 15 attack labels (for example "... - Attempted" rows of the full release,
 * which are unsuccessful attempts) are skipped as unknown.
 */
const file: FeatureSchemaFile = {
  name: 'cicflowmeter',
  description: 'CICFlowMeter flows (CIC-IDS2017 improved, CNS2022 columns); identifiers and Dst Port dropped',
  labelColumn: 'Label',
  benignLabels: ['BENIGN'],
  knownLabels: CIC_ATTACK_LABELS,
  numericDefaults: { transform: 'log1p-signed', standardize: true },
  numeric: CICFLOWMETER_FEATURES,
  categorical: [{ column: 'Protocol', encoding: 'onehot', vocabulary: ['6', '17', '1'] }],
  drop: ['id', 'Flow ID', 'Src IP', 'Src Port', 'Dst IP', 'Dst Port', 'Timestamp', 'Attempted Category'],
  ids: ['id', 'Flow ID', 'Src IP', 'Src Port', 'Dst IP', 'Dst Port', 'Timestamp'],
};

export const cicFlowMeterSchema = freezeSchema(parseFeatureSchema(file, 'cicflowmeter (built-in)'));
