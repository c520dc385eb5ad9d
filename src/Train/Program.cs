using Keras.MobileNet.Cli;

return App.Run(args);
