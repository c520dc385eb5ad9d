global using Keras.MobileNet.Config;
global using Keras.MobileNet.Runs;
global using Keras.MobileNet.Architecture;
