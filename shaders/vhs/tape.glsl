// The tape's figures, by tape speed (the `tape_speed` uniform: 0 SP, 1 LP, 2 EP), written once
// for every pass that needs them (an include line naming this file, expanded by render/gl.py).
// The figures are ../shared/VHS.md's: the luma and colour-under bandwidths (-3 dB), the deck's
// chroma delay in samples at 4 fsc (ntsc-rs), and the NTSC active line time that turns MHz into
// cycles per pixel.
const float LUMA_MHZ[3] = float[3](2.4, 1.9, 1.4);
const float CHROMA_MHZ[3] = float[3](0.32, 0.30, 0.28);
const float DELAY_SAMPLES[3] = float[3](4.0, 5.0, 6.0);
const float FSC4_MHZ = 4.0 * 3.579545;
const float ACTIVE_US = 52.6;   // active line time of NTSC
